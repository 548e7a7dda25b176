defmodule Keyring do
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

  and pass the instance name to the API functions (`keyring: MyApp.Keyring`).
  Every API function defaults to the instance named `Keyring`.

  ## Options

  | option | default | meaning |
  |---|---|---|
  | `:name` | `Keyring` | instance name; child processes are named `<name>.Identity`, `<name>.Store`, ... |
  | `:data_dir` | `".keyring/<node name>"` | where the identity key and the store live |
  | `:passphrase` | `nil` | seals the identity key at rest (Argon2id + XChaCha20-Poly1305) |
  | `:store` | `[]` | options for `Keyring.Store` (see its docs) |
  | `:coordinator` | `[]` | presence/heartbeat options (see `Keyring.Coordinator`) |
  | `:cluster_topologies` | `config :keyring, :cluster_topologies` | discovery (see `Keyring.Cluster`) |
  | `:mesh` | `[]` | options for the QUIC mesh (see `Keyring.Transport.Quic`) |

  `start_link/1` answers `{:error, :bad_passphrase}` when the passphrase does
  not open an existing key, and `{:error, {:store, reason}}` when the store
  cannot be opened (for example `:already_open` when another node uses the
  same data dir).

  ## Example

      iex> dir = Path.join(System.tmp_dir!(), "keyring-doc-#{Base.encode16(:crypto.strong_rand_bytes(6))}")
      iex> {:ok, _pid} = Keyring.start_link(name: DocKeyring, data_dir: dir)
      iex> {:ok, cid} = Keyring.Store.put("hello", keyring: DocKeyring)
      iex> Keyring.Store.get(cid, keyring: DocKeyring)
      {:ok, "hello"}
      iex> byte_size(Keyring.Identity.node_id(DocKeyring))
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

    children =
      [
        {Keyring.Identity, name: name, keypair: opts[:keypair], data_dir: opts[:data_dir]},
        {Keyring.Store,
         Keyword.merge(opts[:store],
           keyring: name,
           data_dir: opts[:data_dir],
           handle: opts[:store_handle]
         )}
      ] ++
        cluster_children(name, opts) ++
        [
          {Keyring.Mesh,
           name: name,
           keypair: opts[:keypair],
           data_dir: opts[:data_dir],
           mesh: opts[:mesh],
           passphrase: opts[:passphrase]}
        ]

    Supervisor.init(children, strategy: :rest_for_one)
  end

  # The cluster plane: PubSub scope, presence CRDT, coordinator, topology
  # events, discovery strategies (see Keyring.Coordinator, Keyring.Cluster).
  defp cluster_children(name, opts) do
    coordinator = Keyring.Instance.child_name(name, Keyring.Coordinator)

    [
      {Keyring.PubSub, keyring: name},
      {
        Keyring.CRDT,
        # Deltas are pushed and beats show liveness: anti-entropy is a backstop.
        name: Keyring.Coordinator.presence_crdt(name),
        keyring: name,
        group: :keyring_presence,
        sync_interval: 30_000,
        on_change: fn diffs ->
          if pid = Process.whereis(coordinator), do: send(pid, {:presence_changed, diffs})
        end
      },
      {Keyring.Coordinator,
       keyring: name, data_dir: opts[:data_dir], coordinator: opts[:coordinator]},
      {Keyring.ClusterHandler, keyring: name},
      {Keyring.Cluster, keyring: name, topologies: opts[:cluster_topologies]}
    ]
  end

  @doc "Joins a keyring with an invite. See `Keyring.Ring.join/2`."
  @spec join(String.t(), keyword()) :: {:ok, Keyring.Ring.id()} | {:error, term()}
  defdelegate join(invite, opts \\ []), to: Keyring.Ring

  @doc "Exposes an RPC handle to keyring members. See `Keyring.RPC.expose/3`."
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
    opts =
      Keyword.validate!(opts, [
        :data_dir,
        :passphrase,
        name: __MODULE__,
        store: [],
        coordinator: [],
        cluster_topologies: Application.get_env(:keyring, :cluster_topologies, []),
        mesh: []
      ])

    Keyring.Coordinator.validate!(opts[:coordinator])
    opts = Keyword.update!(opts, :store, &Keyring.Store.validate!/1)

    unless is_atom(opts[:name]),
      do: raise(ArgumentError, ":name must be an atom, got: #{inspect(opts[:name])}")

    unless is_nil(opts[:passphrase]) or is_binary(opts[:passphrase]),
      do: raise(ArgumentError, ":passphrase must be a binary or nil")

    Keyword.put_new_lazy(opts, :data_dir, fn -> default_data_dir() end)
  end

  defp default_data_dir do
    Application.get_env(:keyring, :data_dir) ||
      Path.join(".keyring", node() |> Atom.to_string() |> String.split("@") |> hd())
  end
end
