"""Pictures of results: a headless mesh renderer (:mod:`~sdfrecon.viz.render`), the
figures of a run (:mod:`~sdfrecon.viz.figures`, :mod:`~sdfrecon.viz.previews`) and the HTML
benchmark report (:mod:`~sdfrecon.bench.html`). matplotlib draws on its Agg canvas only,
so nothing here needs a display or a GPU."""
