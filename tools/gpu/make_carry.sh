#!/bin/bash
# Here (not on the GPU machine): fill .carry/ (git-ignored) with what the GPU machine lacks —
# the wheels of diffusers and the OCR, and this machine's fonts for the synthetic data engine.
set -e
cd "$(dirname "$0")/../.."
grep -qx '/.carry/' .git/info/exclude 2>/dev/null || echo '/.carry/' >> .git/info/exclude
mkdir -p .carry/whl
python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
  --platform manylinux2014_x86_64 --platform manylinux1_x86_64 -d .carry/whl \
  diffusers==0.42.1 importlib_metadata==10.2.0 rapidocr-onnxruntime==1.4.4 pyclipper==1.4.0 shapely==2.2.0
(cd / && find usr/share/fonts \( -name '*.ttf' -o -name '*.otf' \) -print0 | tar -cJf "$OLDPWD/.carry/fonts.tar.xz" --null -T -)
du -sh .carry/whl .carry/fonts.tar.xz
