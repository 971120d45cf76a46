# Warnings on for host and device code; -Werror when QMOE_WERROR is set (CI sets it).
function(qmoe_set_warnings target)
  set(host_flags -Wall -Wextra -Wpedantic -Wshadow)
  if(QMOE_WERROR)
    list(APPEND host_flags -Werror)
  endif()
  target_compile_options(${target} PRIVATE
    $<$<COMPILE_LANGUAGE:CXX>:${host_flags}>
    # Device code: host-compiler warnings via -Xcompiler; nvcc's own warnings are on by default.
    $<$<COMPILE_LANGUAGE:CUDA>:-Xcompiler=-Wall,-Wextra,-Wshadow --expt-relaxed-constexpr -lineinfo>)
  if(QMOE_WERROR)
    target_compile_options(${target} PRIVATE $<$<COMPILE_LANGUAGE:CUDA>:-Werror=all-warnings>)
  endif()
endfunction()
