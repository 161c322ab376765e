# datavor_module(<name> SOURCES ... [DEPS ...] [PRIVATE_DEPS ...])
# One static library per module, named datavor_<name> with alias datavor::<name>.
# Headers are included by repo-root path, so the root is the only include dir.
function(datavor_set_options target)
  target_compile_features(${target} PUBLIC cxx_std_20)
  set_target_properties(${target} PROPERTIES CXX_EXTENSIONS OFF)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wno-missing-field-initializers)
  if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
    # GCC 12 reports -Wrestrict false positives inside libstdc++'s string code.
    target_compile_options(${target} PRIVATE -Wno-restrict)
  endif()
endfunction()

function(datavor_module name)
  cmake_parse_arguments(M "" "" "SOURCES;DEPS;PRIVATE_DEPS" ${ARGN})
  add_library(datavor_${name} STATIC ${M_SOURCES})
  add_library(datavor::${name} ALIAS datavor_${name})
  target_include_directories(datavor_${name} PUBLIC ${PROJECT_SOURCE_DIR})
  target_link_libraries(datavor_${name} PUBLIC ${M_DEPS} PRIVATE ${M_PRIVATE_DEPS})
  datavor_set_options(datavor_${name})
endfunction()
