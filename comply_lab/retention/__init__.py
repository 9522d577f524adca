"""Retention: plans, legal holds, minimum-retention floors and the deletion trail.

Above integrity: retention acts only on a legal-hold trail that verifies.
"""
