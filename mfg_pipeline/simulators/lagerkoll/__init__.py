"""Lagerkoll production orders API simulator (`lagerkoll-production-orders.txt`)."""
