"""DreamerV3 world-model agent with Plan2Explore, reward blending, language conditioning and replay."""
