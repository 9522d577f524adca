"""The investigation side: open any store as DataFrames, Arrow and SQL.

This package imports pandas, pyarrow and DuckDB; the logging core does not.
"""

from comply_lab.lab.log import Log, open_log

__all__ = ["Log", "open_log"]
