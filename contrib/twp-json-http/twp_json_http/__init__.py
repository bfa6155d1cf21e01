"""TWP directory connector plugin json-http."""
