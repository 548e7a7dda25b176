defmodule Keyring.Transport do
  @moduledoc """
  The seam between Keyring's mesh logic and the wire.

  `Keyring.Transport.Quic` (QUIC + TLS 1.3 with Ed25519 raw public keys, the
  peer's key checked against the keyring's membership inside the handshake) is
  the implementation Keyring ships and tests. A transport:

    * admits only current members of a keyring (`set_members/3` replaces the
      snapshot and closes connections of peers that left it);
    * answers asynchronous operations (`call/8`, `cast/8`, `join/6`) with a
      message `{:keyring_reply, ref, result}` to the calling process;
    * reports inbound traffic to the process that called `start/1` as
      `{:keyring_mesh, event}` where `event` is one of
      `{:peer_up, ring, peer, address}`, `{:peer_down, ring, peer, reason}`,
      `{:request, id, ring, peer, name, body}`, `{:cast, ring, peer, name, body}`,
      `{:join_request, id, peer, invite}` or `{:log_update, ring, peer, entries}`.

  Reply and event bodies are documents of the restricted term codec (see `Keyring.RPC`);
  keys and ring ids are 32-byte Ed25519 public keys.
  """

  @type handle :: term()
  @type key :: <<_::256>>
  @type address :: String.t()
  @type status :: :ok | :not_found | :forbidden | :handler_error | :bad_request | :unavailable

  @doc "Starts the transport; events go to the calling process."
  @callback start(opts :: keyword()) :: {:ok, handle()} | {:error, term()}
  @doc "The member and join addresses (`host:port`)."
  @callback addresses(handle()) :: {address(), address()}
  @doc "Replaces a ring's member snapshot (`{key, expires_at_ms}`, 0 = never); returns connections closed."
  @callback set_members(handle(), ring :: key(), [{key(), non_neg_integer()}]) ::
              non_neg_integer()
  @doc "Leaves a ring: drops its snapshot and its connections."
  @callback remove_ring(handle(), ring :: key()) :: non_neg_integer()
  @doc "Remembers where a peer listens."
  @callback add_address(handle(), key(), address()) :: :ok
  @doc "Calls `name` on `peer`; replies `{:ok, {status, body}} | {:error, reason}`."
  @callback call(
              handle(),
              reference(),
              key(),
              key(),
              address() | nil,
              String.t(),
              binary(),
              timeout_ms :: non_neg_integer()
            ) :: :ok
  @doc "Casts `name` to `peer`; replies `:ok | {:error, reason}` once handed to the connection."
  @callback cast(
              handle(),
              reference(),
              key(),
              key(),
              address() | nil,
              String.t(),
              binary(),
              timeout_ms :: non_neg_integer()
            ) :: :ok
  @doc "Answers a `:request` event."
  @callback respond(handle(), id :: non_neg_integer(), status(), binary()) :: boolean()
  @doc "Sends a join request to an admin; replies `{:ok, entries} | {:error, reason}`."
  @callback join(
              handle(),
              reference(),
              address(),
              issuer :: key(),
              invite :: binary(),
              timeout_ms :: non_neg_integer()
            ) :: :ok
  @doc "Answers a `:join_request` event."
  @callback answer_join(handle(), non_neg_integer(), {:ok, [binary()]} | {:error, atom()}) ::
              boolean()
  @doc "Pushes a ring's membership log to its connected members."
  @callback push_log(handle(), key(), [binary()]) :: non_neg_integer()
  @doc "Peers with a live connection in the ring."
  @callback connected(handle(), key()) :: [key()]
  @doc "Dials `peer` for `ring` in the background (with backoff) until linked."
  @callback keep_connected(handle(), ring :: key(), peer :: key()) :: :ok
  @doc "Closes the connection to a peer (the next call redials)."
  @callback disconnect(handle(), key(), key()) :: boolean()
  @doc "Stops the transport."
  @callback close(handle()) :: :ok
end
