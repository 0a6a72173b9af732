"""What every app's API shares: the base view (views.py), the text and boolean fields (fields.py), the JSON parser
(parsers.py) and the one error shape (errors.py)."""
