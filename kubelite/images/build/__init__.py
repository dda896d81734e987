"""`kubelite image build`: OCI images from a Dockerfile, without Docker.

    dockerfile.py    text -> nodes (directives, continuations, comments, JSON/shell forms, heredocs)
    shellwords.py    Docker's word processing: quotes, escapes, $VAR / ${VAR:-x} substitution
    instructions.py  nodes -> typed instructions grouped into stages (flags, argument checks)
    dockerignore.py  .dockerignore patterns as Docker matches them
    context.py       the build context: files visible through .dockerignore, glob sources
    rootview.py      read-only lookups in a stack of layer directories (whiteouts honoured)
    tarlayer.py      layer tarballs (gzip) with their digest and diff ID, from entries or a diff dir
    copying.py       COPY/ADD: sources and destination -> the entries of a layer
    runner.py        RUN: a runc container over an overlay of the stage's layers; the upper dir
                     becomes the layer
    cache.py         the layer cache (<images-root>/build-cache)
    stage.py         a stage's image config and history as instructions change them (pure)
    executor.py      the build: stages in dependency order, the base of each, export
    steps.py         one instruction: substitution, cache lookup, the work (RUN/COPY/WORKDIR layers)
    progress.py      `docker build --progress=plain`-style output
    export.py        the result into the image store under the -t names
    debbase.py       base images from Debian packages (offline)
"""
