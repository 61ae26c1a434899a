"""Remote engines in the window: endpoints, their models, and the dialog to manage them."""
