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

  `start_link/1` answers `{:error, :bad_passphrase}` when the passphrase does
  not open an existing key, and `{:error, {:store, reason}}` when the store
  cannot be opened (for example `:already_open` when another node uses the
  same data dir).

  ## Example

      iex> dir = Path.join(System.tmp_dir!(), "keyring-doc-#{System.unique_integer([:positive])}")
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

    with :ok <- File.mkdir_p(data_dir),
         {:ok, keypair} <- Keyring.Identity.KeyFile.load_or_create(data_dir, opts[:passphrase]) do
      opts = Keyword.merge(opts, data_dir: data_dir, keypair: keypair)
      Supervisor.start_link(__MODULE__, opts, name: opts[:name])
    end
    |> unwrap_start_error()
  end

  @impl Supervisor
  def init(opts) do
    name = opts[:name]

    children =
      [
        {Keyring.Identity, name: name, keypair: opts[:keypair], data_dir: opts[:data_dir]}
        # {Keyring.Store, Keyword.merge(opts[:store], keyring: name, data_dir: opts[:data_dir])}
      ] ++ cluster_children(name, opts)

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

  defp validate!(opts) do
    opts =
      Keyword.validate!(opts, [
        :data_dir,
        :passphrase,
        name: __MODULE__,
        store: [],
        coordinator: [],
        cluster_topologies: Application.get_env(:keyring, :cluster_topologies, [])
      ])

    Keyring.Coordinator.validate!(opts[:coordinator])

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

  # Surface the store's own reason instead of a supervisor-shaped tuple.
  defp unwrap_start_error({:error, {:shutdown, {:failed_to_start_child, _child, reason}}}),
    do: {:error, unwrap_reason(reason)}

  defp unwrap_start_error(other), do: other

  defp unwrap_reason({:store, _} = reason), do: reason
  defp unwrap_reason(reason), do: reason
end
