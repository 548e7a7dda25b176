defmodule Keyring.RPC do
  @moduledoc """
  Default-deny RPC between keyring members over the QUIC mesh.

  Nothing is reachable until it is exposed, and a handle serves the keyrings
  it names. A handle has a name, a handler (`fn args -> reply end` or
  `fn args, caller -> reply end`), the keyrings it serves and an `:authorize`
  function that sees the caller and returns `true` to let it in:

      Keyring.expose(:kv_get, fn key -> MyKV.get(key) end,
        keyring: ops_ring,
        authorize: fn caller -> "reader" in caller.roles end)

      Keyring.call(peer_node_id, :kv_get, "answer", keyring: ops_ring)
      #=> {:ok, 42}

  The caller map has `:key` (the TLS-authenticated 32-byte public key),
  `:node_id`, `:keyring` (the keyring id of the connection), and `:roles` and
  `:admin` from *that* keyring's membership log.

  ## Which keyrings a handle serves

  `keyring: id | [id]` names them; a member of another keyring gets
  `{:error, :not_found}`, as for a name that is not exposed. Without
  `:keyring`, a handle serves a node that belongs to exactly one keyring and
  nobody once the node is in several (so joining a second keyring never opens
  a handle to its members); `keyring: :any` serves every keyring the node is
  in, with the roles of the keyring each caller came through.

  ## Errors a caller sees

    * `{:error, :not_found}`: no such handle for this keyring
    * `{:error, :forbidden}`: not a current member, or `:authorize` refused
    * `{:error, {:handler_error, "error 1a2b3c4d"}}`: the handler raised, exited
      or returned something the codec cannot send; the detail (which may hold
      arguments or secrets) is logged on the serving node with the same id.
      Expose with `expose_errors: true` to send the detail instead.
    * `{:error, :unavailable}`: the handler ran past its `:timeout` and was
      killed, or the caller was revoked while it ran
    * `{:error, :busy}`: the caller already runs `max_handlers_per_peer`
      handlers on that node (see `Keyring.Mesh`)
    * `{:error, {:bad_request, description}}`: the arguments did not decode
    * transport errors: `:not_member`, `:timeout`, `:revoked`, `:unreachable`, ...

  A member revoked with `Keyring.Ring.remove_member/3` is refused before
  `:authorize` runs; when `remove_member` returns, no handler of that key runs
  on the node that made the change, and none can start there.

  ## What crosses the wire

  Arguments and replies use a restricted term codec decoded in Rust: integers
  (64-bit), floats, binaries, atoms, proper lists, tuples and maps, at most 64
  levels deep and 16 MiB per message. Atoms are sent by name and decoded only
  into atoms that already exist on the receiver (an unknown atom makes the
  request fail with `{:error, {:bad_request, _}}`); pids, references, funs and
  ports are refused. `:erlang.binary_to_term/1` never sees peer bytes.

  ## Options for `call/4` and `cast/4`

  | option | default | meaning |
  |---|---|---|
  | `:instance` | `Keyring` | the local instance |
  | `:keyring` | the keyring shared with the peer | keyring id to speak for (required when the two nodes share several) |
  | `:address` | learned | `"host:port"` of the peer's member endpoint |
  | `:timeout` | `5000` | ms (also accepted as the 4th argument) |
  """

  alias Keyring.Instance
  alias Keyring.Mesh.{Quic, Server, TermCodec}

  @type caller :: %{
          key: <<_::256>>,
          node_id: String.t(),
          keyring: <<_::256>>,
          roles: [String.t()],
          admin: boolean()
        }

  @expose_schema [
    keyring: [
      type: {:or, [:string, {:list, :string}, {:in, [:any]}]},
      doc: "keyring id (32 bytes or text), a list of them, or `:any` (see above)"
    ],
    authorize: [
      type: {:fun, 1},
      doc: "`fn caller -> boolean end`; default: every member of a served keyring"
    ],
    timeout: [
      type: :pos_integer,
      default: 30_000,
      doc: "ms a handler may run before it is killed (the caller gets `:unavailable`)"
    ],
    expose_errors: [
      type: :boolean,
      default: false,
      doc: "send a failing handler's error text to the caller (off: an opaque id)"
    ],
    instance: [type: :atom, default: Keyring, doc: "the local instance"]
  ]

  @doc """
  Exposes `handler` under `name` (an atom or string). Options:

  #{Keyring.Options.docs(@expose_schema)}
  """
  @spec expose(atom() | String.t(), (term() -> term()) | (term(), caller() -> term()), keyword()) ::
          :ok
  def expose(name, handler, opts \\ []) do
    opts = Keyring.Options.validate!(opts, @expose_schema, "expose")

    unless is_function(handler, 1) or is_function(handler, 2),
      do:
        raise(ArgumentError, "a handler is a function of arity 1 or 2, got: #{inspect(handler)}")

    handle = %{
      handler: handler,
      authorize: opts[:authorize] || fn _caller -> true end,
      timeout: opts[:timeout],
      keyrings: scope(opts[:keyring]),
      expose_errors: opts[:expose_errors]
    }

    GenServer.call(Server.server(opts[:instance]), {:expose, name!(name), handle})
  end

  defp scope(nil), do: :sole
  defp scope(:any), do: :any
  defp scope(ids) when is_list(ids), do: Enum.map(ids, &Keyring.Ring.id!/1)
  defp scope(id), do: [Keyring.Ring.id!(id)]

  @doc "Withdraws a handle."
  @spec unexpose(atom() | String.t(), keyword()) :: :ok
  def unexpose(name, opts \\ []) do
    opts = Keyword.validate!(opts, instance: Keyring)
    GenServer.call(Server.server(opts[:instance]), {:unexpose, name!(name)})
  end

  @doc "Calls `name` on `peer` (node id text or 32-byte key) with `args`."
  @spec call(String.t() | <<_::256>>, atom() | String.t(), term(), timeout() | keyword()) ::
          {:ok, term()} | {:error, term()}
  def call(peer, name, args, opts \\ [])

  def call(peer, name, args, timeout) when is_integer(timeout),
    do: call(peer, name, args, timeout: timeout)

  def call(peer, name, args, opts) do
    {mesh, ring, peer, opts} = prepare(peer, opts)
    ref = make_ref()
    timeout = opts[:timeout]

    mesh
    |> Quic.call(ref, ring, peer, opts[:address], name!(name), args, timeout)
    |> sent!(args)

    receive do
      {:keyring_reply, ^ref, {:ok, {:ok, reply}}} ->
        TermCodec.decode(reply)

      {:keyring_reply, ^ref, {:ok, {:handler_error, detail}}} ->
        {:error, {:handler_error, text(detail)}}

      {:keyring_reply, ^ref, {:ok, {:bad_request, detail}}} ->
        {:error, {:bad_request, text(detail)}}

      {:keyring_reply, ^ref, {:ok, {:unavailable, detail}}} ->
        if text(detail) == "busy", do: {:error, :busy}, else: {:error, :unavailable}

      {:keyring_reply, ^ref, {:ok, {status, _}}} ->
        {:error, status}

      {:keyring_reply, ^ref, {:error, reason}} ->
        {:error, reason}
    after
      timeout + 2_000 -> {:error, :timeout}
    end
  catch
    :throw, {:keyring_rpc, reason} -> {:error, reason}
  end

  @doc """
  Sends `args` to `name` on `peer` without waiting for the handler. Returns
  `:ok` once the message is handed to an admitted connection.
  """
  @spec cast(String.t() | <<_::256>>, atom() | String.t(), term(), keyword()) ::
          :ok | {:error, term()}
  def cast(peer, name, args, opts \\ []) do
    {mesh, ring, peer, opts} = prepare(peer, opts)
    ref = make_ref()

    mesh
    |> Quic.cast(ref, ring, peer, opts[:address], name!(name), args, opts[:timeout])
    |> sent!(args)

    receive do
      {:keyring_reply, ^ref, result} -> result
    after
      opts[:timeout] + 2_000 -> {:error, :timeout}
    end
  catch
    :throw, {:keyring_rpc, reason} -> {:error, reason}
  end

  @doc """
  Opens (or reuses) an admitted connection to `peer` at `address`
  (`"host:port"` of its member endpoint) and remembers the address.
  """
  @spec connect(String.t() | <<_::256>>, String.t(), keyword()) :: :ok | {:error, term()}
  def connect(peer, address, opts \\ []) when is_binary(address) do
    cast(peer, "keyring.hello", nil, Keyword.put(opts, :address, address))
  end

  defp prepare(peer, opts) do
    opts = Keyword.validate!(opts, [:keyring, :address, instance: Keyring, timeout: 5_000])

    if is_atom(opts[:keyring]) and opts[:keyring] != nil,
      do:
        raise(
          ArgumentError,
          "the local instance is passed as instance:, keyring: names a keyring id"
        )

    mesh = Instance.fetch!(opts[:instance], :mesh)
    peer = Keyring.Ring.id!(peer)
    {mesh, keyring(opts, peer), peer, opts}
  end

  # The keyring to speak for: the one named, or the only one shared with the
  # peer (with several, the caller must say: roles differ per keyring).
  defp keyring(opts, peer) do
    case opts[:keyring] do
      nil ->
        shared =
          for {id, view} <- Instance.fetch!(opts[:instance], :rings),
              Map.has_key?(view.members, peer),
              do: id

        case shared do
          [id] -> id
          [] -> throw({:keyring_rpc, :not_member})
          ids -> throw({:keyring_rpc, {:ambiguous_keyring, Enum.sort(ids)}})
        end

      id ->
        Keyring.Ring.id!(id)
    end
  end

  defp sent!(:ok, _args), do: :ok

  defp sent!({:error, reason}, args) do
    raise ArgumentError,
          "cannot send #{inspect(args, limit: 5)} over the mesh: #{inspect(reason)} " <>
            "(allowed: integers, floats, binaries, atoms, lists, tuples, maps)"
  end

  defp text(detail) do
    case TermCodec.decode(detail) do
      {:ok, text} when is_binary(text) -> text
      _ -> ""
    end
  end

  defp name!(name) when is_atom(name), do: Atom.to_string(name)
  defp name!(name) when is_binary(name) and byte_size(name) in 1..255, do: name

  defp name!(name),
    do:
      raise(
        ArgumentError,
        "a handle name is an atom or a 1..255 byte string, got: #{inspect(name)}"
      )
end
