"""The Streamlit side of the dashboard, for the pages in ``dashboard/views/``: the sidebar's folder
choice (:mod:`.sidebar`), cached loaders that turn failures into messages (:mod:`.loaders`) and small
widgets (:mod:`.widgets`). Compute lives in the modules of ``dashboard`` next to this package."""
