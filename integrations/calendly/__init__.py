"""Calendly: a prospect's booked discovery call moves their qualification along."""
