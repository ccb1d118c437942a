"""optbook.book: the machinery of the book's pages.

For whoever writes or maintains a page (and for the build): what a page calls in its
hidden cells so that its visible code can stay teaching code.

============================  =====================================================
``book.figures``              what every figure shares: colours, font sizes, log axes,
                              PNG/SVG bytes, the kept backdrop of fast slider frames
``book.surface_figures``      loss surfaces and optimizer paths, with their loss curves
``book.average_figures``      averages and moments (8.3–8.6, the worked example)
``book.run_figures``          training runs compared: family tree, grids, schedules, panels
``book.widgets``              sliders over precomputed frames (they work in the static site)
``book.pages``                numbers for the prose, the quick/full run switch, quoted results
``book.device``               where PyTorch runs: CUDA when present, else the CPU
``book.data``                 small generated data sets (no downloads)
``book.playground``           what the playground app and page share
============================  =====================================================
"""
