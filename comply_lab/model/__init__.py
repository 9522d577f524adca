"""The audit entry: its fields, ids, the checks on logged values, its canonical form.

The bottom layer: it imports nothing else of comply_lab but errors and time helpers.
"""
