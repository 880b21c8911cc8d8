# What the embedding scripts (embed_ui.cmake, embed_openapi.cmake) share:
# a file as the body of a C byte array, and writing a generated file.

# hearth_c_bytes(<file> <var>): <var> = "0x..,0x..,…" for the file's bytes,
# 16 to a line, ending in a 0x00 (a NUL after the data, not counted).
function(hearth_c_bytes path var)
  file(READ "${path}" hex HEX)
  string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," hex "${hex}")
  string(REPEAT "0x..," 16 row) # CMake's regex has no {16}
  string(REGEX REPLACE "(${row})" "\\1\n    " hex "${hex}")
  set(${var} "${hex}0x00" PARENT_SCOPE)
endfunction()

# hearth_write_if_changed(<file> <text>): rewritten only when it changes,
# so an unchanged input rebuilds nothing.
function(hearth_write_if_changed path text)
  if(EXISTS "${path}")
    file(READ "${path}" old)
    if(old STREQUAL text)
      return()
    endif()
  endif()
  file(WRITE "${path}" "${text}")
endfunction()
