defmodule Keyring.Native do
  @moduledoc false
  # NIF stubs, replaced when priv/native/libkeyring_nif.so loads. Public modules
  # (Keyring.Identity, Keyring.Store, ...) validate arguments and shape errors;
  # nothing outside lib/keyring calls this module.

  @on_load :load_nif

  @doc false
  def load_nif do
    path = :filename.join(:code.priv_dir(:keyring), ~c"native/libkeyring_nif")

    case :erlang.load_nif(path, 0) do
      :ok ->
        :ok

      {:error, {reason, text}} ->
        # Keep the module loaded so callers get a clear :nif_not_loaded error,
        # and say what to do about it.
        IO.warn("""
        Keyring could not load its native library (#{reason}: #{text}).
        Build it with `mix compile` (needs cargo; see README "Quick start"),
        or check that #{path}.so exists and matches this OTP release (NIF 2.16).
        """)

        :ok
    end
  end

  defp err, do: :erlang.nif_error(:nif_not_loaded)

  # hashing
  def blake3_hash(_data), do: err()
  def hasher_new(), do: err()
  def hasher_update(_hasher, _data), do: err()
  def hasher_finalize(_hasher), do: err()

  # identity
  def keypair_generate(), do: err()
  def keypair_open(_bytes, _passphrase), do: err()
  def keypair_seal(_keypair, _passphrase), do: err()
  def keypair_public_key(_keypair), do: err()
  def sign_app(_keypair, _domain, _message), do: err()
  def sign_app_dirty(_keypair, _domain, _message), do: err()
  def verify_app(_public_key, _domain, _message, _signature), do: err()
  def verify_app_dirty(_public_key, _domain, _message, _signature), do: err()
  def verify(_public_key, _message, _signature), do: err()
  def verify_dirty(_public_key, _message, _signature), do: err()

  # private files (0600 / 0700, no links followed)
  def write_file_atomic(_path, _bytes), do: err()
  def write_file_new(_path, _bytes), do: err()
  def read_private_file(_path, _max_len), do: err()
  def ensure_private_dir(_path), do: err()
  def ensure_private_file(_path), do: err()

  # store
  def store_open(_dir, _cache_bytes, _read_threads, _ingest_threads), do: err()
  def store_close(_store), do: err()
  def store_put(_store, _ref, _data, _tags), do: err()
  def store_import_file(_store, _ref, _path, _tags), do: err()
  def store_delete(_store, _ref, _cid), do: err()
  def store_put_ref(_store, _ref, _name, _value), do: err()
  def store_delete_ref(_store, _ref, _name), do: err()
  def store_set_tag(_store, _ref, _tag, _cid), do: err()
  def store_delete_tag(_store, _ref, _tag, _cid), do: err()
  def store_gc_step(_store, _ref, _cursor, _budget), do: err()
  def store_get_async(_store, _ref, _cid, _verify), do: err()
  def store_get_cached(_store, _cid), do: err()
  def store_size(_store, _cid), do: err()
  def store_verify(_store, _cid), do: err()
  def store_list(_store, _after, _limit), do: err()
  def store_get_ref(_store, _name), do: err()
  def store_list_refs(_store, _prefix, _limit), do: err()
  def store_shared_in(_store, _cid, _ring), do: err()
  def store_tags(_store, _ring, _after, _limit), do: err()
  def store_stats(_store), do: err()
  def store_reader_open(_store, _cid), do: err()
  def store_reader_read(_reader, _offset, _len), do: err()
  def store_reader_read_all(_reader), do: err()
  def store_partial_info(_store, _cid), do: err()
  def store_partial_write(_store, _cid, _size, _ranges, _stream), do: err()
  def store_encode(_store, _cid, _ranges), do: err()
  def blob_writer_new(_store), do: err()
  def blob_writer_write(_writer, _data), do: err()
  def blob_writer_finish(_store, _writer, _ref, _tags), do: err()
  def blob_writer_abort(_writer), do: err()

  # gossip discovery packets (framing only; the HMAC tag is checked in Elixir)
  def gossip_encode(_ts_ms, _nonce, _public_key, _incarnation, _cluster, _node), do: err()
  def gossip_decode(_packet), do: err()

  # keyrings: ring resources (a verified log held in Rust, extended entry by
  # entry; see native/keyring_nif/src/membership.rs for each answer's shape)
  def ring_open(_entries), do: err()
  def ring_create(_root, _name, _admins, _now_ms), do: err()
  def ring_append(_ring, _signer, _op, _now_ms), do: err()
  def ring_ingest(_ring, _entries, _now_ms), do: err()
  def ring_summary(_ring, _now_ms), do: err()
  def ring_entries(_ring, _since), do: err()
  def ring_heads(_ring), do: err()
  def ring_admit(_ring, _invite, _joiner, _now_ms, _joins_per_hour), do: err()

  # strict linear logs as entry lists (the mesh process, until it holds rings)
  def log_create(_root, _name, _admins, _now_ms), do: err()
  def log_verify(_entries, _now_ms), do: err()
  def log_append(_entries, _signer, _op, _now_ms), do: err()
  def log_merge(_current, _incoming), do: err()

  # invites: max_uses 1 = one time, 0 = no per-invite cap; bound_key nil or a key
  def invite_create(
        _issuer,
        _ring_id,
        _token,
        _expires_at_ms,
        _max_uses,
        _address,
        _roles,
        _bound
      ),
      do: err()

  def invite_create(issuer, ring_id, token, expires_at_ms, one_time, address, roles)
      when is_boolean(one_time),
      do:
        invite_create(
          issuer,
          ring_id,
          token,
          expires_at_ms,
          if(one_time, do: 1, else: 0),
          address,
          roles,
          nil
        )

  def invite_verify(_bytes, _now_ms), do: err()

  # signed refs
  def ref_sign(_keypair, _ring, _name, _root, _seq, _timestamp_ms), do: err()
  def ref_decode(_bytes), do: err()
  def ref_accept(_bytes, _ring, _current), do: err()

  # feeds
  def feed_book_new(_max_ahead, _max_waiting_per_feed, _max_waiting_bytes), do: err()
  def feed_load(_book, _entries), do: err()
  def feed_append(_book, _keypair, _ring, _timestamp_ms, _type, _content), do: err()
  def feed_ingest(_book, _ring, _members, _entries), do: err()
  def feed_decode(_entries), do: err()
  def feed_head(_book, _ring, _author), do: err()
  def feed_heads(_book, _ring), do: err()

  # restricted term codec
  def term_encode(_term), do: err()
  def term_encode_dirty(_term), do: err()
  def term_decode(_bytes), do: err()
  def term_decode_dirty(_bytes), do: err()

  # QUIC mesh
  def mesh_start(_keypair, _store, _bind, _join_bind, _max_payload, _keep_alive_ms, _idle_ms),
    do: err()

  def mesh_addrs(_mesh), do: err()
  def mesh_set_members(_mesh, _ring, _members), do: err()
  def mesh_remove_keyring(_mesh, _ring), do: err()
  def mesh_add_address(_mesh, _peer, _address), do: err()
  def mesh_keep_connected(_mesh, _ring, _peer), do: err()
  def mesh_connected(_mesh, _ring), do: err()
  def mesh_disconnect(_mesh, _ring, _peer), do: err()
  def mesh_send(_mesh, _kind, _ref, _ring, _peer, _address, _name, _args, _timeout_ms), do: err()

  def mesh_send_dirty(_mesh, _kind, _ref, _ring, _peer, _address, _name, _args, _timeout_ms),
    do: err()

  def mesh_respond(_mesh, _id, _status, _body), do: err()
  def mesh_join(_mesh, _ref, _address, _issuer, _invite, _timeout_ms), do: err()
  def mesh_answer_join(_mesh, _id, _answer), do: err()
  def mesh_push_log(_mesh, _ring, _entries), do: err()
  def mesh_set_ring(_mesh, _ring), do: err()
  def mesh_exchange_heads(_mesh), do: err()

  def mesh_dag_fetch(_mesh, _ref, _ring, _peer, _addr, _roots, _have, _blobs, _depth, _ms),
    do: err()

  def mesh_reconcile(_mesh, _ref, _ring, _peer, _addr, _ms), do: err()
  def mesh_feeds_attach(_mesh, _pid), do: err()
  def mesh_feeds_push(_mesh, _ring, _entries, _refs), do: err()

  def mesh_feeds_pull(_mesh, _ref, _ring, _peer, _addr, _authors, _heads, _ms),
    do: err()

  def mesh_rejected_handshakes(_mesh), do: err()
  def mesh_dispatch_to(_mesh, _pids), do: err()
  def mesh_close(_mesh), do: err()

  # Blob transfer (Keyring.Sync)
  def sync_attach_store(_mesh, _store), do: err()

  def sync_fetch(_mesh, _ref, _tag, _keyring, _providers, _cids, _stall_ms, _slice_groups),
    do: err()

  def sync_list(_mesh, _ref, _keyring, _peer, _addr, _after, _limit, _timeout_ms), do: err()

  # Merkle DAG nodes and walks
  def dag_encode(_node), do: err()
  def dag_encode_dirty(_node), do: err()
  def dag_decode(_bytes), do: err()
  def dag_decode_dirty(_bytes), do: err()
  def dag_walk_new(_roots, _blobs, _max_depth), do: err()
  def dag_walk_next(_store, _walk, _max_items), do: err()
  # --- gateway (native/keyring_nif/src/gateway.rs, json.rs; Keyring.Gateway) ---
  def gateway_start(_opts, _page), do: err()
  def gateway_addr(_gateway), do: err()
  def gateway_respond(_gateway, _id, _status, _headers, _body), do: err()
  def gateway_respond_dirty(_gateway, _id, _status, _headers, _body), do: err()
  def gateway_chunk(_gateway, _id, _ref, _data), do: err()
  def gateway_finish(_gateway, _id), do: err()
  def gateway_read(_gateway, _id, _ref), do: err()
  def gateway_publish(_gateway, _kind, _subject, _json), do: err()
  def gateway_stats(_gateway), do: err()
  def gateway_close(_gateway), do: err()
  def json_encode(_term), do: err()
  def json_encode_dirty(_term), do: err()
  def json_decode(_json), do: err()
  def json_decode_dirty(_json), do: err()
end
