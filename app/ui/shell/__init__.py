"""The window's frame: the application, the main window that assembles the parts, the status bar,
first-run, About, errors and preferences."""
