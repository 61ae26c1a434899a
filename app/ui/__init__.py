"""The Qt layer: windows and widgets over app.core. Nothing here is imported by app.core."""
