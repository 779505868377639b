"""Collectors: artifact definitions as data and the code that acquires them."""
