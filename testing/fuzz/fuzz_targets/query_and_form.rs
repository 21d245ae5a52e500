#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzz::targets::query_and_form(data));
