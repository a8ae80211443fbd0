import os
import re

from conan import ConanFile
from conan.errors import ConanInvalidConfiguration
from conan.tools.build import check_min_cppstd
from conan.tools.files import copy, load
from conan.tools.layout import basic_layout
from conan.tools.scm import Version

required_conan_version = ">=2.0"


class FilebuilderConan(ConanFile):
    name = "filebuilder"
    description = ("Rebuild files streamed as numbered JSON chunk records through Amazon Kinesis "
                   "and PUT each one, once complete, to the URL it names")
    license = "Apache-2.0"
    topics = ("kinesis", "lambda", "s3", "reassembly", "header-only")
    package_type = "header-library"
    settings = "os", "arch", "compiler", "build_type"
    # One option per optional component (the CMake FILEBUILDER_WITH_* options);
    # core and crypto (simdjson, OpenSSL, protozero) are always there.
    options = {
        "with_curl": [True, False],
        "with_redis": [True, False],
        "with_beast": [True, False],
    }
    default_options = {
        "with_curl": True,
        "with_redis": False,
        "with_beast": False,
    }
    exports_sources = "include/*", "LICENSE"
    no_copy_source = True

    # The headers of each optional component, left out of the package without it.
    _component_headers = {
        "with_curl": "filebuilder/upload/curl.hpp",
        "with_redis": "filebuilder/store/redis.hpp",
        "with_beast": "filebuilder/upload/beast.hpp",
    }

    @property
    def _min_cppstd(self):
        return 20

    @property
    def _compilers_minimum_version(self):
        return {"gcc": "12", "clang": "14", "apple-clang": "15"}

    def set_version(self):
        # project(filebuilder VERSION x.y.z) in CMakeLists.txt is the one source.
        cmakelists = load(self, os.path.join(self.recipe_folder, "CMakeLists.txt"))
        match = re.search(r"project\(filebuilder\s+VERSION\s+(\d+\.\d+\.\d+)", cmakelists)
        if not match:
            raise ConanInvalidConfiguration("CMakeLists.txt: no project(filebuilder VERSION x.y.z)")
        self.version = match.group(1)

    def layout(self):
        basic_layout(self, src_folder=".")

    def requirements(self):
        self.requires("simdjson/[>=3.0.1 <4]", transitive_headers=True)
        self.requires("openssl/[>=3 <4]", transitive_headers=True)
        self.requires("protozero/[>=1.7.1 <2]", transitive_headers=True)
        if self.options.with_curl:
            self.requires("libcurl/[>=7.88 <9]", transitive_headers=True)
        if self.options.with_redis:
            self.requires("hiredis/[>=0.14 <2]", transitive_headers=True)
        if self.options.with_beast:
            self.requires("boost/[>=1.74 <2]", transitive_headers=True)

    def package_id(self):
        self.info.clear()

    def validate(self):
        if self.settings.compiler.get_safe("cppstd"):
            check_min_cppstd(self, self._min_cppstd)
        minimum = self._compilers_minimum_version.get(str(self.settings.compiler))
        if minimum and Version(self.settings.compiler.version) < minimum:
            raise ConanInvalidConfiguration(
                f"{self.ref} requires C++{self._min_cppstd}, which {self.settings.compiler} "
                f"{self.settings.compiler.version} does not support well enough.")
        if self.settings.os == "Windows":
            raise ConanInvalidConfiguration(f"{self.ref} uses POSIX APIs: Linux and macOS only")

    def source(self):
        pass

    def build(self):
        pass

    def package(self):
        copy(self, "LICENSE", self.source_folder, os.path.join(self.package_folder, "licenses"))
        excludes = [header for option, header in self._component_headers.items()
                    if not self.options.get_safe(option)]
        copy(self, "*.hpp", os.path.join(self.source_folder, "include"),
             os.path.join(self.package_folder, "include"), excludes=excludes)

    def package_info(self):
        # The same targets as the CMake install exports (CONTRACT.md).
        self.cpp_info.set_property("cmake_file_name", "filebuilder")
        # The root target would collide with the "usual" component's
        # filebuilder::filebuilder (as in conan-center's pybind11 recipe).
        self.cpp_info.set_property("cmake_target_name", "filebuilder_all_do_not_use")
        self.cpp_info.bindirs = []
        self.cpp_info.libdirs = []

        def component(name, requires, defines=(), target=None):
            info = self.cpp_info.components[name]
            info.set_property("cmake_target_name", target or f"filebuilder::{name}")
            info.requires = list(requires)
            info.defines = list(defines)
            info.bindirs = []
            info.libdirs = []

        component("core", ["simdjson::simdjson"])
        component("crypto", ["core", "openssl::crypto", "protozero::protozero"])
        usual = ["core", "crypto"]
        if self.options.with_curl:
            component("curl", ["core", "libcurl::curl"], ["FILEBUILDER_HAS_CURL=1"])
            usual.append("curl")
        if self.options.with_redis:
            component("redis", ["crypto", "hiredis::hiredislib"], ["FILEBUILDER_HAS_REDIS=1"])
        if self.options.with_beast:
            component("beast", ["core", "boost::headers", "openssl::ssl"],
                      ["FILEBUILDER_HAS_BEAST=1"])
            self.cpp_info.components["beast"].system_libs = ["pthread"]
        # filebuilder::filebuilder: core + crypto + curl, the usual set.
        component("usual", usual, target="filebuilder::filebuilder")
