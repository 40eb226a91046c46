"""Notifications: what people are told, through which channels, and whether it reached them."""
