# lamp with the RLBench back-end: CoppeliaSim 4.1.0 (headless via Xvfb), PyRep, RLBench (LAMP fork by default).
#
#   docker build -t lamp-rlbench .
#   docker run --rm --init -v "$PWD/runs:/workspace/runs" lamp-rlbench lamp pretrain --configs rlbench ...
#
# LICENCES: CoppeliaSim Edu and RLBench are for non-commercial use only. Build this image yourself and keep it
# private: never push it to a public registry. GPU options and every build argument: README "RLBench in a container".
# Facts and pins: shared/reference/rlbench.md section 3 (URLs, install order, environment variables).

# Debian 12 + Python 3.11, the same as lamp's test machines; CoppeliaSim's Ubuntu 20.04 build needs glibc >= 2.31.
ARG BASE_IMAGE=python:3.11-slim-bookworm
FROM ${BASE_IMAGE}

ARG COPPELIASIM_URL=https://downloads.coppeliarobotics.com/V4_1_0/CoppeliaSim_Edu_V4_1_0_Ubuntu20_04.tar.xz
# Record it after the first successful download; empty = not checked.
ARG COPPELIASIM_SHA256=""
ARG PYREP_REPO=https://github.com/stepjam/PyRep.git
# Tag 4.1.0: has xArm7 (the LAMP fork imports it) and pyrep.__version__ 4.1.0.3 (the fork needs >= 4.1.0.2).
ARG PYREP_REF=076ca15c57f2495a4194da03565891ab1aaa317e
# LAMP fork (shaped rewards, pick_shapenet_objects). Upstream instead:
#   --build-arg RLBENCH_REPO=https://github.com/stepjam/RLBench.git
#   --build-arg RLBENCH_REF=02720bba4c73fe02eb75df946b8791b806028a9d
#   --build-arg PYREP_REF=8f420be8064b1970aae18a9cfbc978dfb15747ef
ARG RLBENCH_REPO=https://github.com/ademiadeniji/RLBench_lamp.git
ARG RLBENCH_REF=85df753ab249adb6dac1b48ebc941a4631bf98bc
ARG TORCH_VERSION=2.13.0
# Default: PyPI's Linux wheel, which is the CUDA build (GPU training). For a small CPU-only image:
#   --build-arg TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
ARG TORCH_INDEX_URL=https://pypi.org/simple
# 1 = launch CoppeliaSim once at build time (under Xvfb) and fail the build on a black frame.
ARG RUN_SMOKE=1

SHELL ["/bin/bash", "-o", "pipefail", "-c"]
ENV DEBIAN_FRONTEND=noninteractive \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONUNBUFFERED=1

# build tools; X server with GLX + Mesa; the system Qt/xcb libraries CoppeliaSim's bundled Qt needs (checked with
# ldd below) and fonts for it; codecs and plugin dependencies; tini to reap CoppeliaSim's children.
# DL3008 (pin apt versions) is ignored on purpose: Debian drops superseded versions from its archive, so exact
# pins would stop the image from building after the next point release; the base image tag fixes the release.
# hadolint ignore=DL3008
RUN apt-get update && apt-get install -y --no-install-recommends \
        build-essential git ca-certificates curl xz-utils libffi-dev \
        xvfb xauth x11-utils mesa-utils \
        libgl1 libglx0 libegl1 libglvnd0 libgl1-mesa-dri libglx-mesa0 libglu1-mesa \
        libxkbcommon-x11-0 libxkbcommon0 libx11-xcb1 libxcb1 libxcb-icccm4 libxcb-image0 libxcb-keysyms1 \
        libxcb-randr0 libxcb-render0 libxcb-render-util0 libxcb-shape0 libxcb-shm0 libxcb-sync1 libxcb-xfixes0 \
        libxcb-xinerama0 libxcb-xinput0 libxcb-xkb1 libxcb-glx0 \
        libxrender1 libxext6 libsm6 libice6 libxi6 libfontconfig1 libfreetype6 libdbus-1-3 libglib2.0-0 \
        fontconfig fonts-dejavu-core \
        libavcodec59 libavformat59 libswscale6 libraw1394-11 libmpfr6 libusb-1.0-0 \
        tini \
    && rm -rf /var/lib/apt/lists/*

ENV COPPELIASIM_ROOT=/opt/coppeliasim
ENV LD_LIBRARY_PATH=/opt/coppeliasim \
    QT_QPA_PLATFORM_PLUGIN_PATH=/opt/coppeliasim \
    QT_PLUGIN_PATH=/opt/coppeliasim

# CoppeliaSim: a tarball placed in docker/vendor/ is used instead of the download (the host has moved before).
COPY docker/vendor/ /tmp/vendor/
RUN mkdir -p "$COPPELIASIM_ROOT" \
    && tarball="$(find /tmp/vendor -name 'CoppeliaSim_*.tar.xz' | head -n 1)" \
    && if [ -z "$tarball" ]; then \
           tarball=/tmp/coppeliasim.tar.xz; \
           curl -fsSL --retry 3 "$COPPELIASIM_URL" -o "$tarball"; \
       fi \
    && if [ -n "$COPPELIASIM_SHA256" ]; then echo "$COPPELIASIM_SHA256  $tarball" | sha256sum -c -; fi \
    && sha256sum "$tarball" \
    && tar -xJf "$tarball" -C "$COPPELIASIM_ROOT" --strip-components 1 \
    && rm -rf /tmp/vendor /tmp/coppeliasim.tar.xz \
    && test -f "$COPPELIASIM_ROOT/libcoppeliaSim.so"

# Fail here, not at the first launch ("Could not load the Qt platform plugin xcb"), when a system library that
# CoppeliaSim's bundled Qt loads at start-up is missing. Its xcb platform plugin (and the GLX integration next to it)
# needs, as Debian 12 packages: libxcb1 libx11-xcb1 libxcb-icccm4 libxcb-image0 libxcb-keysyms1 libxcb-randr0
# libxcb-render0 libxcb-render-util0 libxcb-shape0 libxcb-shm0 libxcb-sync1 libxcb-xfixes0 libxcb-xinerama0
# libxcb-xinput0 libxcb-xkb1 libxcb-glx0 libxkbcommon0 libxkbcommon-x11-0 libsm6 libice6 libfontconfig1
# libfreetype6 libdbus-1-3 libglib2.0-0 libgl1 (all installed above; fonts are needed too, but ldd cannot see that).
RUN test -f "$COPPELIASIM_ROOT/platforms/libqxcb.so" \
    && unresolved="$( { ldd "$COPPELIASIM_ROOT/platforms/libqxcb.so"; \
           for lib in "$COPPELIASIM_ROOT"/xcbglintegrations/*.so; do if [ -f "$lib" ]; then ldd "$lib"; fi; done; } \
           | grep "not found" || true)" \
    && if [ -n "$unresolved" ]; then \
           echo "CoppeliaSim's Qt xcb plugin needs system libraries that are missing:" >&2; \
           echo "$unresolved" >&2; \
           exit 1; \
       fi

RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
RUN pip install --upgrade "pip>=24" "setuptools>=68" "wheel>=0.42"

# PyRep: COPPELIASIM_ROOT must be set and writable here (the install patches usrset.txt and adds the .so.1 link).
# Its requirements pin cffi==1.14.2, which has no Python 3.11 wheel, so a newer cffi is installed first and the
# build runs without isolation.
# Its cffi builder reads cffi_build/ from the working directory, hence the WORKDIR; the import check runs
# elsewhere, because importing from the source tree misses the compiled module.
RUN git clone "$PYREP_REPO" /opt/PyRep \
    && git -C /opt/PyRep checkout "$PYREP_REF"
WORKDIR /opt/PyRep
RUN pip install "cffi>=1.15" "numpy>=1.24" \
    && pip install --no-build-isolation .
WORKDIR /
RUN python -c "import pyrep; print('PyRep', pyrep.__version__)" \
    && test -e "$COPPELIASIM_ROOT/libcoppeliaSim.so.1"

# RLBench, editable: a plain install drops the fork's non-.ttm assets. --no-deps keeps our PyRep (upstream's
# setup.py asks for PyRep from git); its runtime needs come from lamp's [rlbench] extra below.
RUN git clone "$RLBENCH_REPO" /opt/RLBench \
    && git -C /opt/RLBench checkout "$RLBENCH_REF" \
    && pip install --no-deps -e /opt/RLBench

# The LAMP fork hard-codes ShapeNet placeholders (/PATH/TO/shapenetcore_v2, /PATH/TO/shapenet): point them at
# $SHAPENET_ROOT, where `docker run -v` mounts ShapeNetCore v2 and its convex parts (licensed; never in the image).
ARG SHAPENET_ROOT=/data
RUN f=/opt/RLBench/rlbench/backend/shapenet_utils.py \
    && if [ -f "$f" ]; then sed -i "s#/PATH/TO/#${SHAPENET_ROOT}/#g" "$f" && ! grep -q "/PATH/TO" "$f"; fi

# torch exactly pinned and installed before lamp, so the index chosen above decides CPU vs CUDA.
RUN pip install "torch==${TORCH_VERSION}" --index-url "$TORCH_INDEX_URL" --extra-index-url https://pypi.org/simple

WORKDIR /workspace
COPY . /workspace
# The test extra (pytest) makes the contract tests runnable in the image against the real stack (README:
# docker run --rm lamp-rlbench python -m pytest -m rlbench); collecting them here proves the command can start.
RUN pip install "/workspace[rlbench,test]" \
    && python -P -c "import rlbench, envs.rlbench; print('RLBench', rlbench.__version__)" \
    && python -m pytest -p no:cacheprovider -q -m rlbench --collect-only >/dev/null

# The smoke test's Xvfb is killed when this step ends, leaving its lock (which names a PID that is likely alive in
# a container) and socket in the layer: remove them, or Xvfb would refuse display :99 at run time.
COPY docker/entrypoint.sh /usr/local/bin/lamp-entrypoint
RUN chmod +x /usr/local/bin/lamp-entrypoint \
    && if [ "$RUN_SMOKE" = "1" ]; then lamp-entrypoint python /workspace/docker/smoke.py push_button; fi \
    && rm -f /tmp/.X*-lock /tmp/.X11-unix/X* /tmp/xvfb.log

ENTRYPOINT ["/usr/bin/tini", "--", "/usr/local/bin/lamp-entrypoint"]
CMD ["lamp", "doctor", "--backend", "rlbench"]
