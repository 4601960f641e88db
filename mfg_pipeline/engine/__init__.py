"""The load engine (no Dagster inside): pages -> typed rows -> staged Parquet -> one warehouse commit per pass,
and the refresh passes that keep each stream fresh at a cost that follows change, not history."""
