# Warning flags for dmarcd's own targets (STYLE.md). Dependencies are
# included as SYSTEM so their headers do not trip these.
add_library(dmarcd_warnings INTERFACE)
target_compile_options(dmarcd_warnings INTERFACE
  -Wall -Wextra -Wpedantic -Wshadow -Wnon-virtual-dtor -Wold-style-cast
  -Woverloaded-virtual -Wimplicit-fallthrough -Wformat=2)
if(DMARCD_WERROR)
  target_compile_options(dmarcd_warnings INTERFACE -Werror)
endif()
