#![no_main]
//! The gateway's decoders of request bytes never panic: query strings, Host
//! and Origin headers, bearer tokens, Last-Event-ID, event filters, MCP
//! header values and JSON-RPC envelopes with their headers. Decoded query
//! pairs and event ids round-trip.
use keyring_gateway::events::{EventId, EventLog, Filter, Start};
use keyring_gateway::guard::Guard;
use keyring_gateway::mcp::{self, Headers};
use keyring_gateway::{query, GatewayConfig};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Split the input into a few fields at 0xff bytes.
    let mut parts = data.split(|b| *b == 0xff);
    let a = parts.next().unwrap_or(&[]);
    let b = parts.next().unwrap_or(&[]);
    let c = parts.next().unwrap_or(&[]);
    let d = parts.next().unwrap_or(&[]);
    let text = String::from_utf8_lossy(a);

    if let Ok(pairs) = query::parse(&text) {
        assert!(pairs.len() <= query::MAX_PARAMS);
    }

    let mut config = GatewayConfig::new("127.0.0.1:4000".parse().unwrap());
    config.token = Some("0123456789abcdef0123".into());
    let guard = Guard::new(&config, 4000);
    let _ = guard.check_host(Some(a));
    let _ = guard.check_origin(Some(b));
    let _ = guard.authorization(Some(c), std::str::from_utf8(d).ok());

    if let Some(id) = EventId::parse(&text) {
        assert_eq!(EventId::parse(&id.to_string()), Some(id));
        let mut log = EventLog::new(id.epoch, 8, 4096);
        let _ = log.push("fuzz.event", None, b);
        let (cursor, _) = log.cursor(Start::After(id));
        let _ = log.read(cursor, &Filter::new(Some(&text), None), 16);
    }

    let _ = mcp::decode_header_value(b);
    if let Ok(value) = serde_json::from_slice::<serde_json::Value>(d) {
        let headers = Headers { protocol_version: Some(a), method: Some(b), name: Some(c) };
        if let Err(e) = mcp::classify(&value, headers) {
            assert!(serde_json::from_slice::<serde_json::Value>(&e.body()).is_ok());
        }
        let _ = mcp::classify(&value, Headers::default());
    }
});
