"""LesionGAN dashboard: `streamlit run dashboard/app.py`. Compute (no Streamlit): discovery, stats,
results, comparison, sampling, realdata, figures, formatting; Streamlit glue: ui/; pages: views/."""
