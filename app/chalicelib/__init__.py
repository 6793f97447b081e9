"""SESami's application library: everything `app.py` declares routes and functions over."""
