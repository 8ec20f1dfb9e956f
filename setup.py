"""Builds the pycrl._C extension with CMake (see CMakeLists.txt).

Environment switches:
  PYCRL_CUDA=ON|OFF|AUTO          CUDA kernels (AUTO: whenever nvcc is found)
  PYCRL_CUDA_ARCHITECTURES=80;90  GPU architectures to compile for
  PYCRL_BUILD_JOBS=N              parallel compile jobs (default: CPU count)
  PYCRL_BUILD_TYPE=Release|Debug
"""

import os
import subprocess
import sys
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

ROOT = Path(__file__).resolve().parent


class CMakeExtension(Extension):
    def __init__(self, name: str) -> None:
        super().__init__(name, sources=[])


class CMakeBuild(build_ext):
    def build_extension(self, ext: Extension) -> None:
        out_dir = Path(self.get_ext_fullpath(ext.name)).resolve().parent
        build_dir = Path(self.build_temp).resolve() / ext.name
        build_dir.mkdir(parents=True, exist_ok=True)
        args = [
            f"-DCMAKE_LIBRARY_OUTPUT_DIRECTORY={out_dir}",
            f"-DPython_EXECUTABLE={sys.executable}",
            f"-DCMAKE_BUILD_TYPE={os.environ.get('PYCRL_BUILD_TYPE', 'Release')}",
            f"-DPYCRL_CUDA={os.environ.get('PYCRL_CUDA', 'AUTO')}",
        ]
        if "PYCRL_CUDA_ARCHITECTURES" in os.environ:
            args.append(f"-DPYCRL_CUDA_ARCHITECTURES={os.environ['PYCRL_CUDA_ARCHITECTURES']}")
        jobs = os.environ.get("PYCRL_BUILD_JOBS", str(os.cpu_count() or 1))
        subprocess.run(["cmake", "-S", str(ROOT), "-B", str(build_dir), *args], check=True)
        subprocess.run(["cmake", "--build", str(build_dir), "--parallel", jobs], check=True)


setup(ext_modules=[CMakeExtension("pycrl._C")], cmdclass={"build_ext": CMakeBuild})
