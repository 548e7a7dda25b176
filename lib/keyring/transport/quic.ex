defmodule Keyring.Transport.Quic do
  @moduledoc """
  QUIC transport (quinn + rustls in the native library): TLS 1.3 only,
  Ed25519 raw public keys (RFC 7250), the peer's key checked against the
  current membership snapshot inside the handshake on both sides, no 0-RTT,
  no session resumption, QUIC keep-alive pings and an idle timeout. Key
  exchange prefers the hybrid X25519MLKEM768, then X25519 (aws-lc-rs).

  One link per peer and keyring: when both sides dial at once they keep the
  connection the lower key dialled. A link lost to a timeout, a reset or the
  peer's shutdown is redialled in the background with exponential backoff
  (0.1 s doubling to 30 s, jittered) while the peer is a member; one closed
  on purpose (revocation, `disconnect`) is not. At start, `Keyring.Mesh`
  dials every member it has a stored address for. The join endpoint makes
  unvalidated addresses answer a QUIC Retry and admits 20 new joins a second
  (bursts of 32); a joiner turned away gets `{:error, :busy}`.

  Options (under `mesh:` in `Keyring.start_link/1`):

  | option | default | meaning |
  |---|---|---|
  | `:host` | `"127.0.0.1"` | address to bind |
  | `:port` | `0` | member endpoint UDP port (0 = any) |
  | `:join_port` | `0` | join endpoint UDP port (0 = any) |
  | `:max_payload` | 16 MiB | largest frame accepted from a peer |
  | `:keep_alive_ms` | `2000` | liveness ping interval |
  | `:idle_timeout_ms` | `10000` | a silent connection is dead after this |
  """
  @behaviour Keyring.Transport

  alias Keyring.Native
  alias Keyring.Mesh.TermCodec

  @impl true
  def start(opts) do
    host = Keyword.get(opts, :host, "127.0.0.1")

    Native.mesh_start(
      Keyword.fetch!(opts, :keypair),
      join_host(host, Keyword.get(opts, :port, 0)),
      join_host(host, Keyword.get(opts, :join_port, 0)),
      Keyword.get(opts, :max_payload, 16 * 1024 * 1024),
      Keyword.get(opts, :keep_alive_ms, 2_000),
      Keyword.get(opts, :idle_timeout_ms, 10_000)
    )
  end

  defp join_host(host, port) do
    if String.contains?(host, ":"), do: "[#{host}]:#{port}", else: "#{host}:#{port}"
  end

  @impl true
  def addresses(mesh) do
    {:ok, addrs} = Native.mesh_addrs(mesh)
    addrs
  end

  @impl true
  def set_members(mesh, ring, members), do: ok!(Native.mesh_set_members(mesh, ring, members))
  @impl true
  def remove_ring(mesh, ring), do: ok!(Native.mesh_remove_keyring(mesh, ring))
  @impl true
  def add_address(mesh, peer, address), do: ok!(Native.mesh_add_address(mesh, peer, address))

  # Arguments are encoded by the NIF straight into the outgoing buffer;
  # binaries of 64 KiB or more are lent to it, not copied. Arguments that
  # still take long to encode (large structures, many smaller binaries) are
  # encoded on a dirty scheduler.
  @lent 64 * 1024
  @impl true
  def call(mesh, ref, ring, peer, address, name, args, timeout_ms),
    do: send_message(:call, mesh, ref, ring, peer, address, name, args, timeout_ms)

  @impl true
  def cast(mesh, ref, ring, peer, address, name, args, timeout_ms),
    do: send_message(:cast, mesh, ref, ring, peer, address, name, args, timeout_ms)

  defp send_message(kind, mesh, ref, ring, peer, address, name, args, timeout_ms) do
    if TermCodec.dirty?(args, @lent),
      do: Native.mesh_send_dirty(mesh, kind, ref, ring, peer, address, name, args, timeout_ms),
      else: Native.mesh_send(mesh, kind, ref, ring, peer, address, name, args, timeout_ms)
  end

  # Bodies of 64 KiB or more are lent to the mesh, smaller ones copied.
  @impl true
  def respond(mesh, id, status, body), do: ok!(Native.mesh_respond(mesh, id, status, body))

  @impl true
  def join(mesh, ref, address, issuer, invite, timeout_ms),
    do: ok!(Native.mesh_join(mesh, ref, address, issuer, invite, timeout_ms))

  @impl true
  def answer_join(mesh, id, answer), do: ok!(Native.mesh_answer_join(mesh, id, answer))
  @impl true
  def push_log(mesh, ring, entries), do: ok!(Native.mesh_push_log(mesh, ring, entries))
  @impl true
  def connected(mesh, ring), do: ok!(Native.mesh_connected(mesh, ring))
  @impl true
  def keep_connected(mesh, ring, peer), do: ok!(Native.mesh_keep_connected(mesh, ring, peer))
  @impl true
  def disconnect(mesh, ring, peer), do: ok!(Native.mesh_disconnect(mesh, ring, peer))
  @impl true
  def close(mesh), do: Native.mesh_close(mesh)

  # NIFs returning Result<T, rustler::Error> answer T (or raise ArgumentError).
  defp ok!(value), do: value
end
