"""The Tkinter client: widgets only. What they show comes from ``chatsecure.client``."""
