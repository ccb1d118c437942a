# Two entry points (see README):  `make book`  and  `make test`.
# Both start from a fresh clone: they create .venv, install requirements.txt, fetch the
# browser assets from npm, a C compiler if it can (for optbook's one-pass loops), and (for
# tests) Debian's chromium, Fashion-MNIST and bubblewrap (the grader's sandbox).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
LABEXT := $(VENV)/share/jupyter/labextensions/optbook-chapter-pages
BUILD_FLAGS := --all --warningiserror --nitpick --keep-going

.PHONY: book test test-gpu setup vendor browser data compiler sandbox lab playground exercises clean

book: setup
	@$(MAKE) --no-print-directory compiler || echo "make book: no C compiler could be" \
	  "installed; the optimizers will take their chunked NumPy path (same results)"
	$(BIN)/jupyter-book build . $(BUILD_FLAGS)

test: setup browser data compiler sandbox
	$(BIN)/python -m pytest

# The CUDA paths and the CUDA benchmark, on a machine with an NVIDIA GPU and a CUDA
# build of torch (not part of `make test`: CI has no GPU).  PYTHON=python3 uses another
# interpreter, e.g. one whose torch has CUDA.
test-gpu:
	PYTHON=$(or $(PYTHON),$(BIN)/python) bash tools/gpu_check.sh

setup: $(VENV)/.installed vendor $(LABEXT)

$(VENV)/.installed: requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	# (venvs made before: JupyterLab's default viewer for every .md was "Jupytext Notebook")
	rm -f $(VENV)/share/jupyter/lab/settings/overrides.json
	touch $@

# JupyterLab opens the chapter pages as notebooks and every other .md file as Markdown:
# labextension/optbook-chapter-pages (a file type matching the chapter pages' names).
$(LABEXT): $(VENV)/.installed $(wildcard labextension/optbook-chapter-pages/*) \
           $(wildcard labextension/optbook-chapter-pages/static/*)
	rm -rf $@ && mkdir -p $(dir $@) && cp -r labextension/optbook-chapter-pages $@
	touch $@

# Browser assets the site serves itself (no CDN): require.js, the ipywidgets HTML
# manager with its fonts, and MathJax 3. Copied to _vendor/npm/ in npm's layout;
# Sphinx publishes _vendor/ as _build/html/_static/ (see _ext/offline_site.py).
vendor: _vendor/.installed

_vendor/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --ignore-scripts
	rm -rf _vendor && mkdir -p _vendor/npm/requirejs _vendor/npm/@jupyter-widgets/html-manager/dist _vendor/npm/mathjax
	cp node_modules/requirejs/require.js _vendor/npm/requirejs/
	cd node_modules/@jupyter-widgets/html-manager/dist && \
	  cp embed-amd.js *.woff *.woff2 *.ttf *.eot *.svg ../../../../_vendor/npm/@jupyter-widgets/html-manager/dist/
	# The bundle's stylesheet asks for its icon fonts relative to the module it names
	# "@jupyter-widgets/html-manager", i.e. in _static/npm/@jupyter-widgets/: put them there too.
	cd node_modules/@jupyter-widgets/html-manager/dist && \
	  cp *.woff *.woff2 *.ttf *.eot ../../../../_vendor/npm/@jupyter-widgets/
	cp -r node_modules/mathjax/es5 _vendor/npm/mathjax/
	touch $@

# Headless Chromium for the site tests (Debian package; needs root or an existing install).
browser:
	@command -v chromium >/dev/null || { apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; }

# Offline MNIST-format data for exercise D2 (Debian's Fashion-MNIST; see optbook.training.idx).
data:
	@test -d /usr/share/datasets/fashion-mnist || { apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dataset-fashion-mnist; }

# bubblewrap, the sandbox in which the grader (python -m optbook.grade) runs student code,
# and libseccomp, which compiles the sandbox's seccomp filter (optbook.grade.sandbox).
sandbox:
	@{ command -v bwrap >/dev/null && $(PYTHON) -c "import ctypes.util as u, sys; \
	  sys.exit(not u.find_library('seccomp'))"; } || \
	  { apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bubblewrap libseccomp2; }

# A C compiler, which builds optbook's one-pass optimizer loops (optbook.fast.onepass; without
# one the optimizers fall back to their chunked NumPy path; the tests check both).
compiler:
	@command -v cc >/dev/null || command -v gcc >/dev/null || { apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq gcc; }

# The exercises from their masters, solutions/masters/<id>.md: the released notebooks in
# exercises/, the executed reference solutions in solutions/ and the checks files in
# solutions/hidden/ (python -m optbook.grade.assign). A solution whose code is unchanged
# keeps its stored outputs (D2's full experiment runs for a long time); the others run.
# One exercise: make exercises IDS=C-long-answers.
exercises: setup
	$(BIN)/python -m optbook.grade.assign --reuse-outputs $(IDS)

# JupyterLab refuses to start as root without --allow-root (containers, Codespaces).
lab: setup
	$(BIN)/jupyter lab $(if $(filter 0,$(shell id -u)),--allow-root)

# The Optimizer Playground (exercise E's reference app) on http://127.0.0.1:8501, offline.
playground: setup
	$(BIN)/streamlit run solutions/playground/app.py --server.headless true \
	  --server.address 127.0.0.1 --server.port 8501 --browser.gatherUsageStats false \
	  --client.toolbarMode viewer

clean:
	rm -rf _build _vendor node_modules
