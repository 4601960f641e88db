"""The analytics layer: dbt models on the warehouse (`dbt_project/`), loaded into Dagster by dagster-dbt as their
own code location (`mfg_pipeline.analytics.definitions`), so the load runs never import dbt."""
