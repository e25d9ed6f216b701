class Texture:
    """A texture id, as in pyrep/textures/texture.py."""

    def __init__(self, texture_id: int):
        self._texture_id = texture_id

    def get_texture_id(self) -> int:
        return self._texture_id
