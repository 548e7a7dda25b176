defmodule Keyring.DAG do
  @moduledoc """
  Merkle DAGs in the store: nodes that link other nodes and blobs by cid,
  directory trees, event chains, and deterministic walks.

  A node is stored as a blob whose bytes are its canonical encoding, so its
  cid is the BLAKE3 hash of that encoding and equal nodes have equal cids.
  There are three kinds:

    * `Keyring.DAG.Raw`: application bytes and links;
    * `Keyring.DAG.Directory`: named entries (files are blobs, directories
      are directory nodes), as `put_dir/2` builds them;
    * `Keyring.DAG.Event`: one event of a hash-chained log, as
      `append_event/3` builds them.

  Encoding and decoding happen in Rust, with limits: 1 MiB per node, 16,384
  links, 255-byte entry names. The byte layout and the canonical rules are
  in the README ("Merkle DAGs").

      iex> dir = Path.join(System.tmp_dir!(), "dag-doc-#{System.unique_integer([:positive])}")
      iex> {:ok, _} = Keyring.start_link(name: DagDoc, data_dir: dir)
      iex> {:ok, leaf} = Keyring.DAG.put_node(%Keyring.DAG.Raw{data: "leaf"}, instance: DagDoc)
      iex> {:ok, root} = Keyring.DAG.put_node(%Keyring.DAG.Raw{data: "root", links: [{:node, leaf}]}, instance: DagDoc)
      iex> {:ok, %Keyring.DAG.Raw{links: [{:node, ^leaf}]}} = Keyring.DAG.get_node(root, instance: DagDoc)
      iex> Keyring.DAG.stream(root, instance: DagDoc) |> Enum.map(fn {_cid, depth, node} -> {depth, node.data} end)
      [{0, "root"}, {1, "leaf"}]

  Every function takes `instance:` (the Keyring instance, default `Keyring`).

  ## Walks

  `stream/2` and `walk/3` visit a DAG depth-first, pre-order, links in
  order, each cid once (at its first occurrence): the same traversal DAG
  sync runs on both sides. Options: `blobs: true` also visits blob links
  (as `{:blob, size}`), `max_depth: n` does not follow links below depth
  `n` (the root is at depth 0). A node that is not in the store, or not a
  valid node, is visited as `:missing` and not followed. The store is read
  on dirty I/O schedulers in batches, so a long walk never holds a normal
  scheduler.

  ## Errors

  `{:error, :not_found}` (no such node), `{:error, {:invalid_node, why}}`
  (a node breaks the encoding rules; nothing is stored), and the store's
  errors (see `Keyring.Store`). Malformed arguments (bad cids, wrong
  struct fields) raise `ArgumentError`.
  """

  alias Keyring.DAG.{Codec, Directory, Event, Raw, Tree}
  alias Keyring.{Instance, Native, Store}
  alias Keyring.Store.Cid

  @type cid :: Cid.t()
  @type dag_node :: Raw.t() | Directory.t() | Event.t()
  @type visit ::
          {cid(), depth :: non_neg_integer(), dag_node() | {:blob, non_neg_integer()} | :missing}

  @walk_batch 256

  @doc "Stores a node; returns its cid once the write is durable."
  @spec put_node(dag_node(), keyword()) :: {:ok, cid()} | {:error, term()}
  def put_node(node, opts \\ []) do
    opts = Keyword.validate!(opts, instance: Keyring)

    with {:ok, {raw, bytes}} <- Codec.encode(node),
         {:ok, cid} <- Store.put(bytes, instance: opts[:instance]) do
      ^cid = Cid.encode(raw)
      {:ok, cid}
    end
  end

  @doc "Reads and decodes the node `cid`."
  @spec get_node(cid() | <<_::256>>, keyword()) :: {:ok, dag_node()} | {:error, term()}
  def get_node(cid, opts \\ []) do
    opts = Keyword.validate!(opts, instance: Keyring)

    with {:ok, bytes} <- Store.get(Cid.parse!(cid), instance: opts[:instance]) do
      Codec.decode(bytes)
    end
  end

  @doc """
  Stores the directory tree at `path`: every regular file as a blob, every
  directory as a `Keyring.DAG.Directory` node (executable files keep their
  mode). Returns the root's cid once everything is durable.

  Options: `instance:`; `symlinks: :error | :skip` (default `:error`: a
  symlink, device or socket in the tree is `{:error, {:unsupported_file,
  path}}`); `on_progress: fun` called with `%{files: n, bytes: b}` after each
  file is stored. Errors name the path: `{:error, {:io, "path: reason"}}`,
  `{:error, {:bad_entry, path, why}}` (a name the format refuses, or a
  directory of more than 16,384 entries).
  """
  @spec put_dir(Path.t(), keyword()) :: {:ok, cid()} | {:error, term()}
  def put_dir(path, opts \\ []) do
    opts = Keyword.validate!(opts, instance: Keyring, symlinks: :error, on_progress: nil)

    unless opts[:symlinks] in [:error, :skip],
      do:
        raise(
          ArgumentError,
          ":symlinks must be :error or :skip, got: #{inspect(opts[:symlinks])}"
        )

    Tree.put(path, opts)
  end

  @doc """
  Writes the directory tree `root` to `dest`, which must not exist or be an
  empty directory. Files are read from the store verified against their
  cids and checked against the sizes the directory claims; an error stops
  the copy (`{:error, {:missing, cid}}` when part of the tree is not stored,
  `{:error, {:size_mismatch, path}}`, `{:error, {:io, message}}`).
  """
  @spec get_dir(cid(), Path.t(), keyword()) :: :ok | {:error, term()}
  def get_dir(root, dest, opts \\ []) do
    opts = Keyword.validate!(opts, instance: Keyring)
    Tree.get(Cid.parse!(root), dest, opts)
  end

  @doc """
  Appends an event after `prev` (an event's cid, or `nil` to start a chain)
  and returns the new event's cid. `attachments: [{:blob | :node, cid}]`
  links content the event refers to.
  """
  @spec append_event(cid() | nil, binary(), keyword()) :: {:ok, cid()} | {:error, term()}
  def append_event(prev, payload, opts \\ []) when is_binary(payload) do
    opts = Keyword.validate!(opts, instance: Keyring, attachments: [])

    with {:ok, seq} <- next_seq(prev, opts) do
      event = %Event{seq: seq, prev: prev, payload: payload, attachments: opts[:attachments]}
      put_node(event, instance: opts[:instance])
    end
  end

  @doc """
  Stores `payloads` as a chain of events, after `prev:` (an event's cid;
  default: a new chain). Returns the cid of the last event. The events are
  hashed first and written together (one group commit), so a long chain
  costs about one disk sync.
  """
  @spec put_events([binary()], keyword()) :: {:ok, cid()} | {:error, term()}
  def put_events(payloads, opts \\ []) when is_list(payloads) do
    opts = Keyword.validate!(opts, instance: Keyring, prev: nil)

    with {:ok, seq} <- next_seq(opts[:prev], opts),
         {:ok, {head, encoded}} <- chain(payloads, opts[:prev], seq),
         :ok <- put_all(encoded, opts[:instance]) do
      {:ok, head}
    end
  end

  defp next_seq(nil, _opts), do: {:ok, 0}

  defp next_seq(prev, opts) do
    case get_node(prev, instance: opts[:instance]) do
      {:ok, %Event{seq: seq}} -> {:ok, seq + 1}
      {:ok, _} -> {:error, {:invalid_node, "prev is not an event"}}
      error -> error
    end
  end

  defp chain(payloads, prev, seq) do
    Enum.reduce_while(payloads, {:ok, {prev, seq, []}}, fn payload, {:ok, {prev, seq, acc}} ->
      case Codec.encode(%Event{seq: seq, prev: prev, payload: payload}) do
        {:ok, {raw, bytes}} -> {:cont, {:ok, {Cid.encode(raw), seq + 1, [bytes | acc]}}}
        error -> {:halt, error}
      end
    end)
    |> case do
      {:ok, {head, _seq, acc}} -> {:ok, {head, acc}}
      error -> error
    end
  end

  @doc false
  # Stores encoded nodes concurrently, so their writes share commits.
  @spec put_all([binary()], atom()) :: :ok | {:error, term()}
  def put_all(encoded, instance) do
    encoded
    |> Task.async_stream(&Store.put(&1, instance: instance),
      max_concurrency: 64,
      ordered: false,
      timeout: :infinity
    )
    |> Enum.find_value(:ok, fn
      {:ok, {:ok, _}} -> nil
      {:ok, error} -> error
    end)
  end

  @doc """
  Fetches the DAG below `root` from another member over the mesh (DAG
  sync, mesh protocol 4) into this node's store, and returns what it took:

      {:ok, %{round_trips: 1, requests: 1, received: 1000, received_bytes: 61_234,
              wire_bytes: 63_301, visits: 1000, missing: [], deferred: []}}

  The provider runs the same deterministic traversal as `stream/2` over its
  store and streams the nodes in that order; this node runs it over what
  arrives, so each node is stored only once it hashes to the cid the
  traversal expects next (every node proven reachable from `root`). A
  provider that sends anything else is cut off: `{:error, {:verify, why}}`,
  and nothing after the lie is stored. Whatever the depth it takes one
  round trip (two at most).

  **What a provider serves:** a root shared in the keyring the request
  comes through (`Keyring.Store.share/3`), and everything reachable from
  it. A root that is absent and one not shared there both answer
  `{:error, :not_found}`.

  `missing` lists cids the provider did not have, `deferred` blobs over
  1 MiB (with `blobs: true`) to fetch by blob transfer. With `pin: true`
  (the default) the root is pinned before the sync starts, so GC keeps
  everything that arrives (see `Keyring.Store.gc/1`: what is reachable
  from a pinned or shared root is protected).

  Other errors: `:busy` (the provider serves as many syncs to this node as
  it allows), `:too_slow`, `:stopped` (the provider reset its answer, e.g.
  at its limit of 1,000,000 cids per response), `:timeout`, `{:codec,
  why}`, `{:store, why}`, and the mesh's transport errors (`:not_member`,
  `:unreachable`, ...).

  Options:

  #{Keyring.Options.docs(Keyring.DAG.Fetch.schema())}
  """
  @spec fetch(cid(), keyword()) :: {:ok, map()} | {:error, term()}
  def fetch(root, opts), do: Keyring.DAG.Fetch.fetch(root, opts)

  @doc """
  A lazy stream of the DAG below `root`: `{cid, depth, value}` in traversal
  order, `value` a node struct, `{:blob, size}` (with `blobs: true`) or
  `:missing`. Options: `instance:`, `blobs:`, `max_depth:`.
  """
  @spec stream(cid() | [cid()], keyword()) :: Enumerable.t(visit())
  def stream(root, opts \\ []) do
    opts = Keyword.validate!(opts, instance: Keyring, blobs: false, max_depth: nil)
    roots = root |> List.wrap() |> Enum.map(&Cid.parse!/1)
    store = Instance.fetch!(opts[:instance], :store)

    unless opts[:max_depth] == nil or (is_integer(opts[:max_depth]) and opts[:max_depth] >= 0),
      do: raise(ArgumentError, ":max_depth must be nil or a non-negative integer")

    Stream.resource(
      fn ->
        {:ok, walk} = Native.dag_walk_new(roots, opts[:blobs] == true, opts[:max_depth])
        walk
      end,
      fn
        :done ->
          {:halt, :done}

        walk ->
          case Native.dag_walk_next(store, walk, @walk_batch) do
            {:ok, items, state} ->
              {Enum.map(items, &visit/1), if(state == :done, do: :done, else: walk)}

            {:error, reason} ->
              raise "Keyring.DAG walk failed: #{inspect(reason)}"
          end
      end,
      fn _ -> :ok end
    )
  end

  defp visit({cid, depth, value}) when is_tuple(value) and elem(value, 0) == :blob,
    do: {Cid.encode(cid), depth, value}

  defp visit({cid, depth, :missing}), do: {Cid.encode(cid), depth, :missing}
  defp visit({cid, depth, term}), do: {Cid.encode(cid), depth, Codec.from_term(term)}

  @doc """
  Calls `fun` with each `{cid, depth, value}` of `stream/2`, in order.
  """
  @spec walk(cid() | [cid()], (visit() -> any()), keyword()) :: :ok
  def walk(root, fun, opts \\ []) when is_function(fun, 1) do
    root |> stream(opts) |> Enum.each(fun)
  end
end
