"""Runs conanfile.py and test_package/conanfile.py against a stand-in of the
Conan 2 API (Conan cannot be installed on these machines), so that the logic
the recipe adds is exercised: the version read from CMakeLists.txt, the
requirements of each option set, the headers left out, and the component
targets of package_info(), which must be the ones the CMake install exports.

    python3 check_conan_recipe.py SOURCE_DIR EXPECTED_VERSION
"""

import ast
import importlib.util
import os
import re
import sys
import types

source_dir, expected_version = sys.argv[1], sys.argv[2]
failures = []


def expect(what, actual, expected):
    if actual != expected:
        failures.append(f"{what}: {actual!r}, expected {expected!r}")


# --- A stand-in for the parts of the Conan 2 API the recipes use. ---
class ConanInvalidConfiguration(Exception):
    pass


class ConanFile:
    recipe_folder = source_dir
    source_folder = source_dir
    package_folder = "/package"


class Version:
    def __init__(self, text):
        self.parts = tuple(int(p) for p in str(text).split("."))

    def __lt__(self, other):
        return self.parts < Version(other).parts


def load(_conanfile, path):
    with open(path, encoding="utf-8") as f:
        return f.read()


copies = []


def copy(_conanfile, pattern, src, dst, excludes=()):
    copies.append((pattern, src, dst, list(excludes)))


def noop(*_args, **_kwargs):
    return True


modules = {
    "conan": {"ConanFile": ConanFile},
    "conan.errors": {"ConanInvalidConfiguration": ConanInvalidConfiguration},
    "conan.tools": {},
    "conan.tools.build": {"check_min_cppstd": noop, "can_run": noop},
    "conan.tools.files": {"copy": copy, "load": load},
    "conan.tools.layout": {"basic_layout": noop},
    "conan.tools.scm": {"Version": Version},
    "conan.tools.cmake": {"CMake": object, "cmake_layout": noop},
}
for name, attributes in modules.items():
    module = types.ModuleType(name)
    module.__dict__.update(attributes)
    sys.modules[name] = module


class Options:
    def __init__(self, values):
        self.__dict__.update(values)

    def get_safe(self, name, default=None):
        return self.__dict__.get(name, default)


class Component:
    def __init__(self):
        self.properties = {}
        self.requires = []
        self.defines = []

    def set_property(self, name, value):
        self.properties[name] = value


class Components(dict):
    def __missing__(self, name):
        return self.setdefault(name, Component())


class CppInfo(Component):
    def __init__(self):
        super().__init__()
        self.components = Components()


def recipe_class(path):
    with open(path, encoding="utf-8") as f:
        ast.parse(f.read(), path)
    spec = importlib.util.spec_from_file_location(os.path.basename(os.path.dirname(path)), path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    classes = [c for c in vars(module).values()
               if isinstance(c, type) and issubclass(c, ConanFile) and c is not ConanFile]
    if len(classes) != 1:
        raise SystemExit(f"{path}: {len(classes)} ConanFile classes")
    return classes[0]


recipe = recipe_class(os.path.join(source_dir, "conanfile.py"))
recipe_class(os.path.join(source_dir, "test_package", "conanfile.py"))

expect("license", recipe.license, "Apache-2.0")
expect("package_type", recipe.package_type, "header-library")
# Options exist only for components that exist (CONTRACT.md): one per
# option(FILEBUILDER_WITH_<COMPONENT>) of CMakeLists.txt.
with open(os.path.join(source_dir, "CMakeLists.txt"), encoding="utf-8") as f:
    cmake_options = re.findall(r"option\(FILEBUILDER_WITH_([A-Z0-9_]+)", f.read())
expect("options", sorted(recipe.options), sorted(f"with_{o.lower()}" for o in cmake_options))

r = recipe()
r.set_version()
expect("version read from CMakeLists.txt", r.version, expected_version)

# The option sets the feature-set test installs with CMake.
for curl, redis, beast in [(False, False, False), (True, False, False), (True, True, True)]:
    label = f"with_curl={curl} with_redis={redis} with_beast={beast}"
    r = recipe()
    r.options = Options({"with_curl": curl, "with_redis": redis, "with_beast": beast})
    required = []
    r.requires = lambda ref, **_traits: required.append(ref.split("/")[0])
    r.requirements()
    expect(f"{label}: requirements", sorted(required),
           sorted(["simdjson", "openssl", "protozero"] + ["libcurl"] * curl + ["hiredis"] * redis
                  + ["boost"] * beast))

    copies.clear()
    r.package()
    excluded = sorted(e for c in copies for e in c[3])
    expect(f"{label}: headers left out", excluded,
           sorted(["filebuilder/upload/curl.hpp"] * (not curl)
                  + ["filebuilder/store/redis.hpp"] * (not redis)
                  + ["filebuilder/upload/beast.hpp"] * (not beast)))
    for header in excluded:
        if not os.path.exists(os.path.join(source_dir, "include", header)):
            failures.append(f"{label}: excludes {header}, which does not exist")

    info = CppInfo()
    r.cpp_info = info
    r.package_info()
    expect(f"{label}: cmake_file_name", info.properties.get("cmake_file_name"), "filebuilder")
    targets = {c.properties.get("cmake_target_name"): c for c in info.components.values()}
    expected_targets = ["filebuilder::core", "filebuilder::crypto"] + ["filebuilder::curl"] * curl \
        + ["filebuilder::redis"] * redis + ["filebuilder::beast"] * beast \
        + ["filebuilder::filebuilder"]
    expect(f"{label}: component targets", sorted(targets), sorted(expected_targets))
    usual = targets.get("filebuilder::filebuilder")
    if usual:
        expect(f"{label}: filebuilder::filebuilder requires", sorted(usual.requires),
               sorted(["core", "crypto"] + ["curl"] * curl))
    for name, define in [("curl", "FILEBUILDER_HAS_CURL=1"), ("redis", "FILEBUILDER_HAS_REDIS=1"),
                         ("beast", "FILEBUILDER_HAS_BEAST=1")]:
        component = targets.get(f"filebuilder::{name}")
        if component:
            expect(f"{label}: filebuilder::{name} defines", component.defines, [define])

if failures:
    print("conanfile.py:\n  " + "\n  ".join(failures))
    sys.exit(1)
print(f"conanfile.py: version {expected_version}, components and requirements as expected")
