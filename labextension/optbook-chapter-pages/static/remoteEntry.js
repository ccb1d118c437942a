/*
 * optbook-chapter-pages: a prebuilt JupyterLab 4 extension, written by hand (no build step).
 *
 * JupyterLab picks the viewer of a file from its file type, and its file types are
 * matched by extension, so "open .md as Jupytext Notebook" would open README.md as a
 * notebook too. A file type may also carry a `pattern` (a regular expression on the
 * file's name), which JupyterLab matches before extensions: this extension registers
 * one, "optbook-chapter-page", for the chapter pages that are notebooks, with
 * jupytext's "Jupytext Notebook" viewer as its default. Every other .md file keeps
 * JupyterLab's own default (the Markdown editor); "Open With" offers both as usual.
 *
 * The pattern: chapters/00-…md to chapters/99-…md and chapters/appendix-x-…md, except
 * 17-exercises.md (text only, no jupytext header). tests/test_jupyterlab.py checks that
 * it selects exactly the pages with a jupytext header.
 *
 * JupyterLab loads this file as a module-federation container (see JupyterLab's
 * bootstrap.js): window._JUPYTERLAB[name].init(shareScope), then .get('./extension')
 * returns a factory of the module, whose default export is the list of plugins. The
 * plugin needs nothing shared: it uses the application's own document registry.
 */
(function () {
  var PATTERN = "^(?!17-exercises\\.md$)(?:\\d\\d|appendix-[a-z])-[^/]*\\.md$";
  var FILE_TYPE = "optbook-chapter-page";
  var VIEWER = "Jupytext Notebook";

  var plugin = {
    id: "optbook-chapter-pages:plugin",
    description: "Open the chapter pages as notebooks (jupytext), other Markdown as Markdown.",
    autoStart: true,
    activate: function (app) {
      app.docRegistry.addFileType(
        {
          name: FILE_TYPE,
          displayName: "Chapter page (MyST Markdown notebook)",
          contentType: "notebook",
          extensions: [],
          mimeTypes: ["text/markdown"],
          pattern: PATTERN
        },
        [VIEWER]
      );
    }
  };

  var scope = (window._JUPYTERLAB = window._JUPYTERLAB || {});
  scope["optbook-chapter-pages"] = {
    init: function () { return Promise.resolve(); },
    get: function (module) {
      if (module !== "./extension") {
        return Promise.reject(new Error("optbook-chapter-pages has no module " + module));
      }
      return Promise.resolve(function () { return { __esModule: true, default: [plugin] }; });
    }
  };
})();
