defmodule Keyring.RPC do
  @moduledoc """
  Default-deny RPC between keyring members over the QUIC mesh.

  Nothing is reachable until it is exposed. A handle has a name, a handler
  (`fn args -> reply end` or `fn args, caller -> reply end`) and an
  `:authorize` function that sees the caller and returns `true` to let it in:

      Keyring.expose(:kv_get, fn key -> MyKV.get(key) end,
        authorize: fn caller -> "reader" in caller.roles end)

      Keyring.call(peer_node_id, :kv_get, "answer")
      #=> {:ok, 42}

  The caller map has `:key` (the TLS-authenticated 32-byte public key),
  `:node_id`, `:keyring` (the keyring id of the connection), `:roles` and
  `:admin` (from the keyring's membership log). Without `:authorize`, every
  current member of a keyring shared with this node may call the handle.

  Calling a name that is not exposed answers `{:error, :not_found}`; a caller
  the authorize function refuses gets `{:error, :forbidden}`; a handler that
  raises gives `{:error, {:handler_error, description}}`, and one that runs
  past its `:timeout` `{:error, :unavailable}`.

  ## Events

  Each instance publishes, locally on `Keyring.PubSub` topic `"keyring:mesh"`:
  `{:keyring_mesh, :peer_up, %{keyring: id, peer: key, address: addr}}`,
  `{:keyring_mesh, :peer_down, %{keyring: id, peer: key, reason: text}}` and
  `{:keyring_mesh, :membership, info}` (see `Keyring.Ring.info/2`) whenever a
  keyring's log changes.

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
  | `:keyring` | `Keyring` | the local instance |
  | `:ring` | the first keyring shared with the peer | keyring id to speak for |
  | `:address` | learned | `"host:port"` of the peer's member endpoint |
  | `:timeout` | `5000` | ms (also accepted as the 4th argument) |
  """

  alias Keyring.{Instance, Ring}
  alias Keyring.Mesh
  alias Keyring.Mesh.TermCodec

  @type caller :: %{
          key: <<_::256>>,
          node_id: String.t(),
          keyring: <<_::256>>,
          roles: [String.t()],
          admin: boolean()
        }

  @doc """
  Exposes `handler` under `name` (an atom or string). Options: `:authorize`
  (`fn caller -> boolean end`), `:timeout` (ms a handler may run before it
  is killed and the caller gets `{:error, :unavailable}`; default 30 s),
  `:keyring` (instance).
  """
  @spec expose(atom() | String.t(), (term() -> term()) | (term(), caller() -> term()), keyword()) ::
          :ok
  def expose(name, handler, opts \\ []) do
    opts = Keyword.validate!(opts, [:authorize, keyring: Keyring, timeout: 30_000])

    unless is_function(handler, 1) or is_function(handler, 2),
      do:
        raise(ArgumentError, "a handler is a function of arity 1 or 2, got: #{inspect(handler)}")

    authorize = opts[:authorize] || fn _caller -> true end

    unless is_function(authorize, 1),
      do: raise(ArgumentError, ":authorize must be a function of arity 1")

    unless is_integer(opts[:timeout]) and opts[:timeout] > 0,
      do: raise(ArgumentError, ":timeout must be a positive integer (ms)")

    GenServer.call(
      Mesh.server(opts[:keyring]),
      {:expose, name!(name), handler, authorize, opts[:timeout]}
    )
  end

  @doc "Withdraws a handle."
  @spec unexpose(atom() | String.t(), keyword()) :: :ok
  def unexpose(name, opts \\ []) do
    opts = Keyword.validate!(opts, keyring: Keyring)
    GenServer.call(Mesh.server(opts[:keyring]), {:unexpose, name!(name)})
  end

  @doc "Calls `name` on `peer` (node id text or 32-byte key) with `args`."
  @spec call(String.t() | <<_::256>>, atom() | String.t(), term(), timeout() | keyword()) ::
          {:ok, term()} | {:error, term()}
  def call(peer, name, args, opts \\ [])

  def call(peer, name, args, timeout) when is_integer(timeout),
    do: call(peer, name, args, timeout: timeout)

  def call(peer, name, args, opts) do
    {transport, handle, ring, peer, opts} = prepare(peer, opts)
    ref = make_ref()
    timeout = opts[:timeout]

    transport.call(handle, ref, ring, peer, opts[:address], name!(name), args, timeout)
    |> sent!(args)

    receive do
      {:keyring_reply, ^ref, {:ok, {:ok, reply}}} ->
        TermCodec.decode(reply)

      {:keyring_reply, ^ref, {:ok, {:handler_error, detail}}} ->
        {:error, {:handler_error, text(detail)}}

      {:keyring_reply, ^ref, {:ok, {:bad_request, detail}}} ->
        {:error, {:bad_request, text(detail)}}

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
    {transport, handle, ring, peer, opts} = prepare(peer, opts)
    ref = make_ref()

    transport.cast(handle, ref, ring, peer, opts[:address], name!(name), args, opts[:timeout])
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
    opts = Keyword.validate!(opts, [:ring, :address, keyring: Keyring, timeout: 5_000])
    {transport, handle} = Instance.fetch!(opts[:keyring], :mesh)
    peer = Ring.id!(peer)
    rings = Instance.fetch!(opts[:keyring], :rings)

    ring =
      case opts[:ring] do
        nil ->
          Enum.find_value(rings, fn {id, view} -> Map.has_key?(view.members, peer) && id end) ||
            throw({:keyring_rpc, :not_member})

        ring ->
          Ring.id!(ring)
      end

    {transport, handle, ring, peer, opts}
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
