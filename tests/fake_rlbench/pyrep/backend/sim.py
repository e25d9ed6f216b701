"""The real module wraps libcoppeliaSim through cffi; the stand-in has nothing to load."""
