defmodule Keyring.Mesh.Quic do
  @moduledoc false
  # The mesh plane's adapter to the QUIC mesh in the native library
  # (native/keyring_net): argument conversion and the choice between normal
  # and dirty NIFs. The transport's behaviour (handshake checks, links,
  # redials, fences) is documented in `Keyring.Mesh`.
  #
  # Asynchronous operations (call, cast, join) answer the calling process
  # with `{:keyring_reply, ref, result}`; inbound traffic reaches the process
  # that called start/2 as `{:keyring_mesh, event}`.

  alias Keyring.Native
  alias Keyring.Mesh.TermCodec

  # `opts` are the validated `mesh:` options (see Keyring.Mesh).
  def start(keypair, store, opts) do
    host = opts[:host]

    Native.mesh_start(
      keypair,
      store,
      join_host(host, opts[:port]),
      join_host(host, opts[:join_port]),
      opts[:max_payload],
      opts[:keep_alive_ms],
      opts[:idle_timeout_ms]
    )
  end

  defp join_host(host, port) do
    if String.contains?(host, ":"), do: "[#{host}]:#{port}", else: "#{host}:#{port}"
  end

  def addresses(mesh) do
    {:ok, addrs} = Native.mesh_addrs(mesh)
    addrs
  end

  def set_members(mesh, ring, members), do: Native.mesh_set_members(mesh, ring, members)
  def remove_keyring(mesh, ring), do: Native.mesh_remove_keyring(mesh, ring)
  def add_address(mesh, peer, address), do: Native.mesh_add_address(mesh, peer, address)

  # Arguments are encoded by the NIF straight into the outgoing buffer;
  # binaries of 64 KiB or more are lent to it, not copied. Arguments that
  # still take long to encode (large structures, many smaller binaries) are
  # encoded on a dirty scheduler.
  @lent 64 * 1024
  def call(mesh, ref, ring, peer, address, name, args, timeout_ms),
    do: send_message(:call, mesh, ref, ring, peer, address, name, args, timeout_ms)

  def cast(mesh, ref, ring, peer, address, name, args, timeout_ms),
    do: send_message(:cast, mesh, ref, ring, peer, address, name, args, timeout_ms)

  defp send_message(kind, mesh, ref, ring, peer, address, name, args, timeout_ms) do
    if TermCodec.dirty?(args, @lent),
      do: Native.mesh_send_dirty(mesh, kind, ref, ring, peer, address, name, args, timeout_ms),
      else: Native.mesh_send(mesh, kind, ref, ring, peer, address, name, args, timeout_ms)
  end

  # Requests and casts go to these processes (see Keyring.Mesh.Dispatch).
  def dispatch_to(mesh, pids), do: Native.mesh_dispatch_to(mesh, pids)

  # Bodies of 64 KiB or more are lent to the mesh, smaller ones copied.
  def respond(mesh, id, status, body), do: Native.mesh_respond(mesh, id, status, body)

  def join(mesh, ref, address, issuer, invite, timeout_ms),
    do: Native.mesh_join(mesh, ref, address, issuer, invite, timeout_ms)

  def answer_join(mesh, id, answer), do: Native.mesh_answer_join(mesh, id, answer)
  def push_log(mesh, ring, entries), do: Native.mesh_push_log(mesh, ring, entries)
  # The verified ring (a Keyring.Mesh.Log's resource) the transport answers
  # head exchanges from and drops known pushes against.
  def set_ring(mesh, ring), do: Native.mesh_set_ring(mesh, ring)
  def exchange_heads(mesh), do: Native.mesh_exchange_heads(mesh)
  def connected(mesh, ring), do: Native.mesh_connected(mesh, ring)
  def keep_connected(mesh, ring, peer), do: Native.mesh_keep_connected(mesh, ring, peer)
  def disconnect(mesh, ring, peer), do: Native.mesh_disconnect(mesh, ring, peer)
  def close(mesh), do: Native.mesh_close(mesh)
end
