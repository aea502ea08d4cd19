"""stb_app"""
