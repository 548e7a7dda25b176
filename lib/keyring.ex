defmodule Keyring do
  @schema [
    name: [
      type: :atom,
      default: Keyring,
      doc: "instance name; its processes are named `<name>.Identity`, `<name>.Store`, ..."
    ],
    data_dir: [
      type: :string,
      doc: "where the identity key and the store live (default `.keyring/<node name>`)"
    ],
    passphrase: [
      type: {:or, [:string, {:in, [nil]}]},
      default: nil,
      doc: "seals the identity key and keyring root keys at rest (Argon2id + XChaCha20-Poly1305)"
    ],
    store: [type: :keyword, default: [], doc: "options for `Keyring.Store` (see its docs)"],
    coordinator: [
      type: :keyword,
      default: [],
      doc: "presence/heartbeat options (see `Keyring.Coordinator`)"
    ],
    cluster_topologies: [
      type: :keyword,
      doc: "discovery (see `Keyring.Cluster`; default `config :keyring, :cluster_topologies`)"
    ],
    mesh: [type: :keyword, default: [], doc: "options for the mesh plane (see `Keyring.Mesh`)"],
    sync: [type: :keyword, default: [], doc: "content sync options (see `Keyring.Sync`)"],
    gateway: [
      type: {:or, [:boolean, :keyword, {:in, [nil]}]},
      default: false,
      doc: "HTTP/SSE/MCP gateway and status page: `true` or options (see `Keyring.Gateway`)"
    ]
  ]

  @moduledoc """
  Keyring is a runtime for meshes of autonomous nodes: each node has an Ed25519
  identity (`Keyring.Identity`) and a content-addressed blob store
  (`Keyring.Store`); nodes form trust groups and coordinate over CRDTs.

  ## Running Keyring

  As its own application (`mix run --no-halt`, `mix keyring.start NAME`) Keyring
  starts one instance named `Keyring` from `config :keyring, instance: [...]`.

  Embedded in a host application, add it to your supervision tree:

      children = [
        {Keyring, name: MyApp.Keyring, data_dir: "/var/lib/my_app/keyring"}
      ]

  and pass the instance name to the API functions (`instance: MyApp.Keyring`).
  Every API function defaults to the instance named `Keyring`.

  ## Options

  #{Keyring.Options.docs(@schema)}

  Unknown or mistyped options (also inside `:store`, `:coordinator`, `:mesh`)
  raise an `ArgumentError` that names them.

  ## Supervision

  Identity, Store and PubSub come first (`:rest_for_one`); then the two planes
  under a `:one_for_one` supervisor of their own, so a crash in one never
  restarts the other: the cluster plane (presence CRDT, `Keyring.Coordinator`,
  ClusterHandler, `Keyring.Cluster` discovery) and the mesh plane
  (`Keyring.Mesh`: keyrings, RPC, QUIC links). The gateway
  (`Keyring.Gateway`, when enabled) comes last: it serves both planes.

  `start_link/1` answers `{:error, :bad_passphrase}` when the passphrase does
  not open an existing key, and `{:error, {:store, reason}}` when the store
  cannot be opened (for example `:already_open` when another node uses the
  same data dir).

  ## Example

      iex> dir = Path.join(System.tmp_dir!(), "keyring-doc-#{Base.encode16(:crypto.strong_rand_bytes(6))}")
      iex> {:ok, _pid} = Keyring.start_link(name: DocKeyring, data_dir: dir)
      iex> {:ok, cid} = Keyring.Store.put("hello", instance: DocKeyring)
      iex> Keyring.Store.get(cid, instance: DocKeyring)
      {:ok, "hello"}
      iex> byte_size(Keyring.Identity.node_id(instance: DocKeyring))
      52
  """
  use Supervisor

  @type instance :: atom()

  @doc false
  def child_spec(opts) do
    opts = validate!(opts)
    %{id: opts[:name], start: {__MODULE__, :start_link, [opts]}, type: :supervisor}
  end

  @doc "Starts a Keyring instance. See the module docs for options."
  @spec start_link(keyword()) :: Supervisor.on_start() | {:error, term()}
  def start_link(opts \\ []) do
    opts = validate!(opts)
    data_dir = Path.expand(opts[:data_dir])

    # Everything that can fail for a reason the caller should see (a data dir
    # in use, a corrupted store, a wrong passphrase) is opened here, before
    # the supervisor starts, so it comes back as {:error, reason} rather than
    # as an exit of the linked caller.
    with nil <- Process.whereis(opts[:name]),
         :ok <- mkdir(data_dir),
         {:ok, store} <- Keyring.Store.Server.open(data_dir, opts[:store]),
         :ok <- secure_store(data_dir, store),
         {:ok, keypair} <- load_identity(data_dir, opts[:passphrase], store) do
      opts = Keyword.merge(opts, data_dir: data_dir, keypair: keypair, store_handle: store)

      case Supervisor.start_link(__MODULE__, opts, name: opts[:name]) do
        {:ok, pid} ->
          {:ok, pid}

        other ->
          Keyring.Store.Server.close(store)
          other
      end
    else
      pid when is_pid(pid) -> {:error, {:already_started, pid}}
      {:error, _} = error -> error
    end
  end

  # The data dir and the store's dir are owner-only (0700) and the store file
  # is created empty with mode 0600 (redb initialises an empty file) before
  # the store opens; after, a wider mode on an older store file is narrowed
  # with a warning (Keyring.Identity.PrivateFile).
  defp mkdir(dir) do
    alias Keyring.Identity.PrivateFile

    with :ok <- PrivateFile.ensure_dir(dir),
         :ok <- PrivateFile.ensure_dir(Path.join(dir, "store")),
         :ok <- PrivateFile.touch(store_file(dir)) do
      :ok
    else
      {:error, reason} -> {:error, {:data_dir, reason}}
    end
  end

  defp store_file(dir), do: Path.join([dir, "store", "store.redb"])

  defp secure_store(dir, store) do
    case Keyring.Identity.PrivateFile.ensure_file(store_file(dir)) do
      :ok ->
        :ok

      {:error, reason} ->
        Keyring.Store.Server.close(store)
        {:error, {:data_dir, reason}}
    end
  end

  defp load_identity(data_dir, passphrase, store) do
    with {:error, _} = error <- Keyring.Identity.KeyFile.load_or_create(data_dir, passphrase) do
      Keyring.Store.Server.close(store)
      error
    end
  end

  @impl Supervisor
  def init(opts) do
    name = opts[:name]

    planes = [
      {Keyring.ClusterPlane, opts},
      {Keyring.Mesh,
       name: name,
       keypair: opts[:keypair],
       data_dir: opts[:data_dir],
       mesh: opts[:mesh],
       passphrase: opts[:passphrase]},
      {Keyring.Sync, instance: name, sync: opts[:sync]},
      {Keyring.Feed.Supervisor, name: name}
    ]

    children =
      [
        {Keyring.Identity, name: name, keypair: opts[:keypair], data_dir: opts[:data_dir]},
        {Keyring.Store,
         Keyword.merge(opts[:store],
           instance: name,
           data_dir: opts[:data_dir],
           handle: opts[:store_handle]
         )},
        {Keyring.PubSub, instance: name},
        %{
          id: :planes,
          type: :supervisor,
          start: {Supervisor, :start_link, [planes, [strategy: :one_for_one]]}
        }
      ] ++ gateway_children(name, opts)

    Supervisor.init(children, strategy: :rest_for_one)
  end

  # The gateway (Keyring.Gateway), last: it serves every subsystem above.
  defp gateway_children(name, opts) do
    case opts[:gateway] do
      off when off in [nil, false] -> []
      conf -> [{Keyring.Gateway, instance: name, data_dir: opts[:data_dir], gateway: conf}]
    end
  end

  @doc "Joins a keyring with an invite. See `Keyring.Ring.join/2`."
  @spec join(String.t(), keyword()) :: {:ok, Keyring.Ring.id()} | {:error, term()}
  defdelegate join(invite, opts \\ []), to: Keyring.Ring

  @doc "Exposes an RPC handle to members of a keyring. See `Keyring.RPC.expose/3`."
  @spec expose(atom() | String.t(), function(), keyword()) :: :ok
  defdelegate expose(name, handler, opts \\ []), to: Keyring.RPC

  @doc "Calls an exposed handle on a keyring member. See `Keyring.RPC.call/4`."
  @spec call(String.t() | binary(), atom() | String.t(), term(), timeout() | keyword()) ::
          {:ok, term()} | {:error, term()}
  defdelegate call(peer, name, args, opts \\ []), to: Keyring.RPC

  @doc "Casts to an exposed handle on a keyring member. See `Keyring.RPC.cast/4`."
  @spec cast(String.t() | binary(), atom() | String.t(), term(), keyword()) ::
          :ok | {:error, term()}
  defdelegate cast(peer, name, args, opts \\ []), to: Keyring.RPC

  defp validate!(opts) do
    opts
    |> Keyring.Options.validate!(@schema, "Keyring")
    |> Keyword.put_new_lazy(:cluster_topologies, fn ->
      Application.get_env(:keyring, :cluster_topologies, [])
    end)
    |> Keyword.update!(:coordinator, &Keyring.Coordinator.validate!/1)
    |> Keyword.update!(:store, &Keyring.Store.validate!/1)
    |> Keyword.update!(:mesh, &Keyring.Mesh.Options.validate!/1)
    |> Keyword.update!(:sync, &Keyring.Sync.Options.validate!/1)
    |> Keyword.update!(:gateway, &Keyring.Gateway.validate!/1)
    |> Keyword.put_new_lazy(:data_dir, fn -> default_data_dir() end)
  end

  defp default_data_dir do
    Application.get_env(:keyring, :data_dir) ||
      Path.join(".keyring", node() |> Atom.to_string() |> String.split("@") |> hd())
  end
end
