//! The host calls of the request path, made directly instead of through the SDK's
//! convenience methods: those turn every header name and value into a `String` and unwrap
//! (one Latin-1 byte in any header trapped the VM, and Envoy then answered 503 to every
//! request until it was restarted), and panic on any status they do not expect. Here every
//! byte sequence is accepted, and a host call that fails is an error the caller handles.
//!
//! Left to the SDK: `dispatch_http_call` (the SDK must register the call to route its
//! answer; it panics only on statuses Envoy never returns for it) and logging.
//!
//! The serialized header maps of proxy-wasm ABI 0.2.1 are read by [`decode_pairs`] and
//! written by [`encode_pairs`], both plain functions with their own tests.

use std::ptr::{null, null_mut};

use proxy_wasm::types::{BufferType, MapType};

/// A proxy-wasm status other than `Ok`, as the host returned it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct HostError(pub(crate) u32);

impl std::fmt::Display for HostError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = match self.0 {
            1 => "NotFound",
            2 => "BadArgument",
            3 => "SerializationFailure",
            4 => "ParseFailure",
            7 => "Empty",
            5 => "Reserved",
            6 => "Reserved",
            8 => "CasMismatch",
            9 => "ResultMismatch",
            10 => "InternalFailure",
            11 => "BrokenConnection",
            12 => "Unimplemented",
            _ => "unknown status",
        };
        write!(f, "{name} ({})", self.0)
    }
}

#[cfg(target_arch = "wasm32")]
mod abi {
    // The same imports the SDK declares, with raw `u32` statuses so that no value the host
    // returns can be an invalid enum.
    #[link(wasm_import_module = "env")]
    extern "C" {
        pub fn proxy_get_header_map_pairs(
            map_type: u32,
            return_map_data: *mut *mut u8,
            return_map_size: *mut usize,
        ) -> u32;
        pub fn proxy_replace_header_map_value(
            map_type: u32,
            key_data: *const u8,
            key_size: usize,
            value_data: *const u8,
            value_size: usize,
        ) -> u32;
        pub fn proxy_remove_header_map_value(
            map_type: u32,
            key_data: *const u8,
            key_size: usize,
        ) -> u32;
        pub fn proxy_add_header_map_value(
            map_type: u32,
            key_data: *const u8,
            key_size: usize,
            value_data: *const u8,
            value_size: usize,
        ) -> u32;
        pub fn proxy_get_buffer_bytes(
            buffer_type: u32,
            start: usize,
            max_size: usize,
            return_buffer_data: *mut *mut u8,
            return_buffer_size: *mut usize,
        ) -> u32;
        #[allow(clippy::too_many_arguments)]
        pub fn proxy_send_local_response(
            status_code: u32,
            status_code_details_data: *const u8,
            status_code_details_size: usize,
            body_data: *const u8,
            body_size: usize,
            headers_data: *const u8,
            headers_size: usize,
            grpc_status: i32,
        ) -> u32;
        pub fn proxy_continue_stream(stream_type: u32) -> u32;
        pub fn proxy_get_current_time_nanoseconds(return_time: *mut u64) -> u32;
        pub fn proxy_define_metric(
            metric_type: u32,
            name_data: *const u8,
            name_size: usize,
            return_id: *mut u32,
        ) -> u32;
        pub fn proxy_increment_metric(metric_id: u32, offset: i64) -> u32;
        pub fn proxy_get_property(
            path_data: *const u8,
            path_size: usize,
            return_value_data: *mut *mut u8,
            return_value_size: *mut usize,
        ) -> u32;
        pub fn proxy_get_shared_data(
            key_data: *const u8,
            key_size: usize,
            return_value_data: *mut *mut u8,
            return_value_size: *mut usize,
            return_cas: *mut u32,
        ) -> u32;
        pub fn proxy_set_shared_data(
            key_data: *const u8,
            key_size: usize,
            value_data: *const u8,
            value_size: usize,
            cas: u32,
        ) -> u32;
        pub fn proxy_set_tick_period_milliseconds(period: u32) -> u32;
    }
}

// Off wasm (the native unit tests and clippy) there is no host: every call fails.
#[cfg(not(target_arch = "wasm32"))]
#[allow(clippy::missing_safety_doc, clippy::too_many_arguments)]
mod abi {
    const UNIMPLEMENTED: u32 = 12;
    pub unsafe fn proxy_get_header_map_pairs(_: u32, _: *mut *mut u8, _: *mut usize) -> u32 {
        UNIMPLEMENTED
    }
    pub unsafe fn proxy_replace_header_map_value(
        _: u32,
        _: *const u8,
        _: usize,
        _: *const u8,
        _: usize,
    ) -> u32 {
        UNIMPLEMENTED
    }
    pub unsafe fn proxy_remove_header_map_value(_: u32, _: *const u8, _: usize) -> u32 {
        UNIMPLEMENTED
    }
    pub unsafe fn proxy_add_header_map_value(
        _: u32,
        _: *const u8,
        _: usize,
        _: *const u8,
        _: usize,
    ) -> u32 {
        UNIMPLEMENTED
    }
    pub unsafe fn proxy_get_buffer_bytes(
        _: u32,
        _: usize,
        _: usize,
        _: *mut *mut u8,
        _: *mut usize,
    ) -> u32 {
        UNIMPLEMENTED
    }
    pub unsafe fn proxy_send_local_response(
        _: u32,
        _: *const u8,
        _: usize,
        _: *const u8,
        _: usize,
        _: *const u8,
        _: usize,
        _: i32,
    ) -> u32 {
        UNIMPLEMENTED
    }
    pub unsafe fn proxy_continue_stream(_: u32) -> u32 {
        UNIMPLEMENTED
    }
    pub unsafe fn proxy_get_current_time_nanoseconds(_: *mut u64) -> u32 {
        UNIMPLEMENTED
    }
    pub unsafe fn proxy_define_metric(_: u32, _: *const u8, _: usize, _: *mut u32) -> u32 {
        UNIMPLEMENTED
    }
    pub unsafe fn proxy_increment_metric(_: u32, _: i64) -> u32 {
        UNIMPLEMENTED
    }
    pub unsafe fn proxy_get_property(
        _: *const u8,
        _: usize,
        _: *mut *mut u8,
        _: *mut usize,
    ) -> u32 {
        UNIMPLEMENTED
    }
    pub unsafe fn proxy_get_shared_data(
        _: *const u8,
        _: usize,
        _: *mut *mut u8,
        _: *mut usize,
        _: *mut u32,
    ) -> u32 {
        UNIMPLEMENTED
    }
    pub unsafe fn proxy_set_shared_data(
        _: *const u8,
        _: usize,
        _: *const u8,
        _: usize,
        _: u32,
    ) -> u32 {
        UNIMPLEMENTED
    }
    pub unsafe fn proxy_set_tick_period_milliseconds(_: u32) -> u32 {
        UNIMPLEMENTED
    }
}

const OK: u32 = 0;
/// `proxy_continue_stream`'s stream type for the request.
const STREAM_HTTP_REQUEST: u32 = 0;
/// `proxy_define_metric`'s metric type for a counter.
const METRIC_COUNTER: u32 = 0;

fn status(code: u32) -> Result<(), HostError> {
    if code == OK {
        Ok(())
    } else {
        Err(HostError(code))
    }
}

/// Takes ownership of a buffer the host allocated with the SDK's `proxy_on_memory_allocate`.
///
/// # Safety
/// `data` must be null or point to `size` bytes the host allocated for this module.
unsafe fn take_host_buffer(data: *mut u8, size: usize) -> Vec<u8> {
    if data.is_null() {
        Vec::new()
    } else {
        Vec::from_raw_parts(data, size, size)
    }
}

/// The serialized pairs of a header map, as the host handed them.
#[derive(Clone, Default)]
pub(crate) struct HeaderMap(Vec<u8>);

impl HeaderMap {
    /// The name and value bytes of every pair, in order.
    pub(crate) fn pairs(&self) -> Result<Vec<Pair<'_>>, MalformedMap> {
        decode_pairs(&self.0)
    }
}

fn header_map(map: MapType) -> Result<HeaderMap, HostError> {
    let mut data = null_mut();
    let mut size = 0;
    // SAFETY: the host writes a buffer it allocated through `proxy_on_memory_allocate` (or
    // nothing) into `data` and its length into `size`.
    unsafe {
        status(abi::proxy_get_header_map_pairs(
            map as u32, &mut data, &mut size,
        ))?;
        Ok(HeaderMap(take_host_buffer(data, size)))
    }
}

/// Every request header, as bytes.
pub(crate) fn request_headers() -> Result<HeaderMap, HostError> {
    header_map(MapType::HttpRequestHeaders)
}

/// Every header of the answer to a `dispatch_http_call`.
pub(crate) fn call_response_headers() -> Result<HeaderMap, HostError> {
    header_map(MapType::HttpCallResponseHeaders)
}

/// Up to `max` bytes of the answer body of a `dispatch_http_call`.
pub(crate) fn call_response_body(max: usize) -> Result<Vec<u8>, HostError> {
    buffer_bytes(BufferType::HttpCallResponseBody, max)
}

/// Up to `max` bytes of the request body buffered so far.
pub(crate) fn request_body(max: usize) -> Result<Vec<u8>, HostError> {
    buffer_bytes(BufferType::HttpRequestBody, max)
}

fn buffer_bytes(buffer: BufferType, max: usize) -> Result<Vec<u8>, HostError> {
    let mut data = null_mut();
    let mut size = 0;
    // SAFETY: as in `header_map`.
    unsafe {
        let code = abi::proxy_get_buffer_bytes(buffer as u32, 0, max, &mut data, &mut size);
        // An empty body is `NotFound` in some hosts.
        if code == 1 {
            return Ok(Vec::new());
        }
        status(code)?;
        Ok(take_host_buffer(data, size))
    }
}

/// The SHA-256 of the client certificate of this request's connection, as hex digits
/// (Envoy's `connection.sha256_peer_certificate_digest`); `None` without mutual TLS, or when
/// the host does not know the property.
pub(crate) fn client_certificate_sha256_hex() -> Option<Vec<u8>> {
    property(b"connection\0sha256_peer_certificate_digest")
}

/// Header bytes as a log shows them: visible ASCII and space as they are, `\\` doubled,
/// every other byte `\xNN`, so that no byte a client sends can forge a log line.
pub(crate) fn printable(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for &byte in bytes {
        match byte {
            b'\\' => out.push_str("\\\\"),
            b' '..=b'~' => out.push(char::from(byte)),
            _ => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                out.push_str("\\x");
                out.push(char::from(HEX[usize::from(byte >> 4)]));
                out.push(char::from(HEX[usize::from(byte & 15)]));
            }
        }
    }
    out
}

/// The request's dynamic metadata, serialized (Envoy: an `envoy.config.core.v3.Metadata`,
/// which holds what `jwt_authn` verified); `None` when the host has none.
pub(crate) fn request_metadata() -> Option<Vec<u8>> {
    property(b"metadata")
}

/// A property's value; `None` when the host lacks it or it is empty. A path is its
/// segments, each followed by NUL but the last (ABI 0.2.1).
fn property(path: &[u8]) -> Option<Vec<u8>> {
    let mut data = null_mut();
    let mut size = 0;
    // SAFETY: as in `header_map`; the path is a live byte slice.
    unsafe {
        status(abi::proxy_get_property(
            path.as_ptr(),
            path.len(),
            &mut data,
            &mut size,
        ))
        .ok()?;
        let value = take_host_buffer(data, size);
        (!value.is_empty()).then_some(value)
    }
}

/// Whether the host is ngx_wasm_module: it answers `ngx.*` properties (nginx variables),
/// Envoy does not. Asked in a request (nginx has no variables outside one).
pub(crate) fn is_ngx_wasm_module() -> bool {
    property(b"ngx\0nginx_version").is_some()
}

/// Puts the `Host` header's value in `:authority` (kept when there is no `Host`).
pub(crate) fn authority_from_host_header(pairs: &mut [Pair<'_>]) {
    let Some(host) = pairs
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(b"host"))
        .map(|(_, value)| *value)
    else {
        return;
    };
    for (name, value) in pairs.iter_mut() {
        if *name == b":authority" {
            *value = host;
        }
    }
}

/// Sets a request header, replacing every value it had.
pub(crate) fn set_request_header(name: &str, value: &str) -> Result<(), HostError> {
    // SAFETY: the pointers and lengths describe live byte slices.
    status(unsafe {
        abi::proxy_replace_header_map_value(
            MapType::HttpRequestHeaders as u32,
            name.as_ptr(),
            name.len(),
            value.as_ptr(),
            value.len(),
        )
    })
}

/// Adds a value of a response header (beside any the upstream sent).
pub(crate) fn add_response_header(name: &str, value: &str) -> Result<(), HostError> {
    // SAFETY: the pointers and lengths describe live byte slices.
    status(unsafe {
        abi::proxy_add_header_map_value(
            MapType::HttpResponseHeaders as u32,
            name.as_ptr(),
            name.len(),
            value.as_ptr(),
            value.len(),
        )
    })
}

/// Removes every value of a request header.
pub(crate) fn remove_request_header(name: &str) -> Result<(), HostError> {
    // SAFETY: as above.
    status(unsafe {
        abi::proxy_remove_header_map_value(
            MapType::HttpRequestHeaders as u32,
            name.as_ptr(),
            name.len(),
        )
    })
}

/// Answers the request without the upstream.
pub(crate) fn send_local_response(
    status_code: u16,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Result<(), HostError> {
    let headers = encode_pairs(headers);
    // SAFETY: as above; a null details pointer with size 0 means "no details".
    status(unsafe {
        abi::proxy_send_local_response(
            u32::from(status_code),
            null(),
            0,
            body.as_ptr(),
            body.len(),
            headers.as_ptr(),
            headers.len(),
            -1,
        )
    })
}

/// Lets a paused request go on to the upstream.
pub(crate) fn resume_request() -> Result<(), HostError> {
    // SAFETY: no pointers.
    status(unsafe { abi::proxy_continue_stream(STREAM_HTTP_REQUEST) })
}

/// The host's clock in seconds since 1970.
pub(crate) fn now_seconds() -> Result<u64, HostError> {
    Ok(now_nanos()? / 1_000_000_000)
}

/// The host's clock in nanoseconds since 1970.
pub(crate) fn now_nanos() -> Result<u64, HostError> {
    let mut nanos = 0u64;
    // SAFETY: the host writes one u64.
    status(unsafe { abi::proxy_get_current_time_nanoseconds(&mut nanos) })?;
    Ok(nanos)
}

/// Defines a counter.
pub(crate) fn define_counter(name: &str) -> Result<u32, HostError> {
    let mut id = 0;
    // SAFETY: as above.
    status(unsafe {
        abi::proxy_define_metric(METRIC_COUNTER, name.as_ptr(), name.len(), &mut id)
    })?;
    Ok(id)
}

/// Adds one to a counter.
pub(crate) fn increment_counter(id: u32) -> Result<(), HostError> {
    // SAFETY: no pointers.
    status(unsafe { abi::proxy_increment_metric(id, 1) })
}

/// A record of the host's shared data (shared by every VM with the same `vm_id`) and its
/// version; `None` when there is none.
pub(crate) fn shared_data(key: &str) -> Result<Option<(Vec<u8>, u32)>, HostError> {
    let mut data = null_mut();
    let mut size = 0;
    let mut cas = 0;
    // SAFETY: as in `header_map`, plus one u32 the host writes.
    unsafe {
        let code =
            abi::proxy_get_shared_data(key.as_ptr(), key.len(), &mut data, &mut size, &mut cas);
        if code == 1 {
            return Ok(None);
        }
        status(code)?;
        Ok(Some((take_host_buffer(data, size), cas)))
    }
}

/// The status of a shared-data write that lost a compare-and-swap.
pub(crate) const CAS_MISMATCH: HostError = HostError(8);

/// A version no record carries in practice (the hosts count versions up from 1).
const NO_RECORD_CAS: u32 = u32::MAX;

/// Writes a shared-data record if its version is still `cas`; [`CAS_MISMATCH`] when another
/// VM wrote it since. Never called with 0, which the hosts read differently (below).
pub(crate) fn set_shared_data(key: &str, value: &[u8], cas: u32) -> Result<(), HostError> {
    debug_assert!(cas != 0, "cas 0 means different things to Envoy and nginx");
    write_shared_data(key, value, cas)
}

/// Writes a shared-data record only where there is none; [`CAS_MISMATCH`] when there is one.
///
/// A cas of 0 is "only if absent" to nginx (ngx_wasm_module) but "whatever is there" to Envoy,
/// where two VMs that both found no record would both write and the later erase the earlier
/// (a DPoP proof accepted twice). Envoy takes any other cas for an absent key and refuses it
/// for a present one, so a version no record carries asks Envoy; nginx refuses that for an
/// absent key, and then 0 asks nginx. A record present after the refusal means it was created
/// meanwhile (neither host deletes one here).
pub(crate) fn create_shared_data(key: &str, value: &[u8]) -> Result<(), HostError> {
    match write_shared_data(key, value, NO_RECORD_CAS) {
        Err(CAS_MISMATCH) if matches!(shared_data(key), Ok(None)) => {
            write_shared_data(key, value, 0)
        }
        written => written,
    }
}

/// Replaces a shared-data record whatever its version, or creates it.
pub(crate) fn replace_shared_data(key: &str, value: &[u8]) -> Result<(), HostError> {
    for _ in 0..4 {
        let written = match shared_data(key)? {
            Some((_, cas)) => set_shared_data(key, value, cas),
            None => create_shared_data(key, value),
        };
        if written != Err(CAS_MISMATCH) {
            return written;
        }
    }
    Err(CAS_MISMATCH)
}

fn write_shared_data(key: &str, value: &[u8], cas: u32) -> Result<(), HostError> {
    // SAFETY: two live byte slices.
    status(unsafe {
        abi::proxy_set_shared_data(key.as_ptr(), key.len(), value.as_ptr(), value.len(), cas)
    })
}

/// How often the root context's `on_tick` runs.
pub(crate) fn set_tick_period(milliseconds: u32) -> Result<(), HostError> {
    // SAFETY: no pointers.
    status(unsafe { abi::proxy_set_tick_period_milliseconds(milliseconds) })
}

/// A header's name and value bytes.
pub(crate) type Pair<'a> = (&'a [u8], &'a [u8]);

/// Why a serialized header map cannot be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct MalformedMap;

/// Reads the proxy-wasm encoding of header pairs: a little-endian `u32` count, then a
/// `u32` name length and a `u32` value length per pair, then each name and each value
/// followed by a NUL byte.
pub(crate) fn decode_pairs(bytes: &[u8]) -> Result<Vec<Pair<'_>>, MalformedMap> {
    if bytes.is_empty() {
        return Ok(Vec::new());
    }
    let read_u32 = |at: usize| -> Result<usize, MalformedMap> {
        let field = bytes.get(at..at.checked_add(4).ok_or(MalformedMap)?);
        let field: [u8; 4] = field.and_then(|f| f.try_into().ok()).ok_or(MalformedMap)?;
        usize::try_from(u32::from_le_bytes(field)).map_err(|_| MalformedMap)
    };
    let count = read_u32(0)?;
    // Every pair takes at least ten bytes, which bounds the allocation below by the input.
    if count > bytes.len() / 10 {
        return Err(MalformedMap);
    }
    let mut pairs = Vec::with_capacity(count);
    let mut at = 4 + count * 8;
    for index in 0..count {
        let name_len = read_u32(4 + index * 8)?;
        let value_len = read_u32(8 + index * 8)?;
        let name = take(bytes, &mut at, name_len)?;
        let value = take(bytes, &mut at, value_len)?;
        pairs.push((name, value));
    }
    Ok(pairs)
}

/// `len` bytes at `*at` followed by a NUL; moves `*at` past the NUL.
fn take<'a>(bytes: &'a [u8], at: &mut usize, len: usize) -> Result<&'a [u8], MalformedMap> {
    let end = at.checked_add(len).ok_or(MalformedMap)?;
    let field = bytes.get(*at..end).ok_or(MalformedMap)?;
    if bytes.get(end) != Some(&0) {
        return Err(MalformedMap);
    }
    *at = end + 1;
    Ok(field)
}

/// Writes header pairs in the encoding [`decode_pairs`] reads.
pub(crate) fn encode_pairs(pairs: &[(&str, &str)]) -> Vec<u8> {
    let size = 4 + pairs
        .iter()
        .map(|(n, v)| 10 + n.len() + v.len())
        .sum::<usize>();
    let mut out = Vec::with_capacity(size);
    let len = |n: usize| u32::try_from(n).unwrap_or(u32::MAX).to_le_bytes();
    out.extend_from_slice(&len(pairs.len()));
    for (name, value) in pairs {
        out.extend_from_slice(&len(name.len()));
        out.extend_from_slice(&len(value.len()));
    }
    for (name, value) in pairs {
        out.extend_from_slice(name.as_bytes());
        out.push(0);
        out.extend_from_slice(value.as_bytes());
        out.push(0);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_round_trip_with_any_bytes_in_values() {
        let encoded = encode_pairs(&[(":path", "/a"), ("user-agent", "M"), ("x", "")]);
        let mut raw = encoded.clone();
        // A Latin-1 byte where `M` was: the SDK's `String` conversion panicked on this.
        let at = raw.iter().position(|&b| b == b'M').unwrap();
        raw[at] = 0xfc;
        let pairs = decode_pairs(&raw).unwrap();
        assert_eq!(pairs[0], (&b":path"[..], &b"/a"[..]));
        assert_eq!(pairs[1], (&b"user-agent"[..], &b"\xfc"[..]));
        assert_eq!(pairs[2], (&b"x"[..], &b""[..]));
        assert_eq!(decode_pairs(&encoded).unwrap().len(), 3);
        assert_eq!(decode_pairs(&[]).unwrap(), Vec::<Pair<'_>>::new());
    }

    #[test]
    fn malformed_maps_are_refused_never_panicked_on() {
        let encoded = encode_pairs(&[("authorization", "Bearer t"), (":path", "/")]);
        // Every truncation, and every single-byte change of the length table.
        for end in 1..encoded.len() {
            assert_eq!(decode_pairs(&encoded[..end]), Err(MalformedMap), "{end}");
        }
        for at in 0..20 {
            for byte in [0x00, 0x7f, 0xff] {
                let mut bad = encoded.clone();
                bad[at] = byte;
                let _ = decode_pairs(&bad);
            }
        }
        // A count that would need more memory than the input holds.
        assert_eq!(decode_pairs(&[0xff, 0xff, 0xff, 0xff]), Err(MalformedMap));
        // A missing NUL terminator.
        let mut bad = encoded.clone();
        let last = bad.len() - 1;
        bad[last] = b'x';
        assert_eq!(decode_pairs(&bad), Err(MalformedMap));
    }
}
