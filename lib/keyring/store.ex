defmodule Keyring.Store do
  @moduledoc """
  Content-addressed blob storage: a blob's id (its cid) is the BLAKE3 hash
  of its bytes, written as 64 hex characters (see `Keyring.Store.Cid`).
  Storing the same bytes twice is a no-op that returns the same cid.

      iex> dir = Path.join(System.tmp_dir!(), "keyring-store-#{Base.encode16(:crypto.strong_rand_bytes(6))}")
      iex> {:ok, _} = Keyring.start_link(name: StoreDoc, data_dir: dir)
      iex> {:ok, cid} = Keyring.Store.put("hello", instance: StoreDoc)
      iex> cid
      "ea8f163db38682925e4491c5e58d4bb3506ef8c14eb78a86e908c5624a67200f"
      iex> Keyring.Store.get(cid, instance: StoreDoc, verify: true)
      {:ok, "hello"}
      iex> Keyring.Store.has?(cid, instance: StoreDoc)
      true
      iex> Keyring.Store.stats(instance: StoreDoc).blobs
      1

  ## Durability

  Every write answers only once it is on disk: an acknowledged write
  survives `kill -9` and power loss, and a write interrupted by a crash
  leaves nothing visible. Concurrent writers share one transaction and one
  fsync (group commit).

  ## Small and large blobs

  Blobs up to 16 KiB live inside the store's index (redb); hot ones are also
  served from a memory cache on the caller's scheduler. Larger blobs are
  files beside the index (`<data_dir>/store/blobs/`, mode 0600, directories
  0700), written in one pass that hashes them, builds their *outboard* (the
  BLAKE3 tree's parent hashes at 16 KiB groups, 0.39 % of the size, for
  verified streaming to peers) and writes them; the kernel writes the file
  back while the pass goes on, so one fsync at the end finishes it.
  `put_file/2` reads the file in native code; `put_stream/2` takes pieces;
  `get/2` reads a blob into one binary with one copy; `stream/2` reads it in
  pieces.

  ## Sharing and pinning

  Blobs are shared *into keyrings*: `share(cid, ring)` (or `put(data, share:
  ring)`) puts a tag `{ring, name} → cid`. **A blob is served to a peer only
  when it is shared in a keyring both are in, over that keyring's
  connection.** A member of keyring A who guesses the cid of a blob shared
  only in keyring B, or not shared at all, gets the same answer as for a cid
  that does not exist. Tags are named; a tag without a name is named after
  its cid, so `share(cid, ring)` twice is one tag. Moving a named tag
  (`share(new_cid, ring, name: "latest")`) unshares the old cid unless
  another tag shares it. `pin/2` keeps a blob locally without sharing it.
  A tag may name a blob the store does not hold yet: share or pin first,
  then download, and the blob is protected from its first byte.

  ## Garbage collection

  Tags (shares and pins) are what keep blobs: `gc/1` deletes every blob and
  partial blob no tag names, that no tagged blob reaches through DAG links
  (`Keyring.DAG`: pinning or sharing a root keeps its whole DAG), and that
  no download in progress holds, and the files of crashed writes. It never runs by itself unless `gc_interval` is
  set. It works in bounded steps, each a single commit in the same queue as
  every put and tag, so a blob put or tagged while GC runs is never lost: a
  put with `pin:` or `share:` is protected the moment it is acknowledged.
  Blobs put without a tag are garbage once GC runs. `delete/2` removes a
  blob whatever tags name it.

  ## Errors

  Bad arguments (a non-binary blob, a malformed cid) raise `ArgumentError`.
  Everything else is `{:error, reason}`:

  | reason | meaning |
  |---|---|
  | `:not_found` | no such blob, ref or partial blob |
  | `:content_mismatch` | a verified read found bytes that do not hash to the cid |
  | `:no_space` | the disk is full; the write was not made |
  | `:busy` | a queue of the store (65,536 entries) is full |
  | `:closed` | the store is shutting down |
  | `:timeout` | no answer within `:timeout` |
  | `{:too_large, what}` | a ref name (> 1 KiB), value (> 64 KiB) or tag name (> 1 KiB) |
  | `{:io, message}` | any other I/O error |

  Starting a Keyring whose store cannot be opened returns
  `{:error, {:store, :already_open}}` (another node uses the data dir) or
  `{:error, {:store, {:corrupted, message}}}`.

  ## Options

  Every function takes `instance:` (the local instance, default `Keyring`); writes
  and `get/2` take `timeout:` (default 60 s). The store itself is configured
  by the `store:` option of `Keyring`:

    * `:cache_bytes` - budget of the small-blob cache (default 64 MiB; `0`: off).
    * `:read_threads` - threads reading blobs that miss the cache (default 2).
    * `:ingest_threads` - threads writing large blobs to files (default 2).
    * `:gc_interval` - run `gc/1` every so many ms (default `nil`: never).
    * `:gc_budget` - records per step of that periodic GC (default 1,000).
  """

  alias Keyring.{Instance, Native}
  alias Keyring.Native.Reply
  alias Keyring.Store.{Cid, GC, Partials, Reader, Refs, Tags}

  @type cid :: Cid.t()
  @type ring :: <<_::256>> | String.t()
  @type stats :: %{
          blobs: non_neg_integer(),
          bytes: non_neg_integer(),
          file_bytes: non_neg_integer(),
          partials: non_neg_integer(),
          shares: non_neg_integer(),
          pins: non_neg_integer(),
          commits: non_neg_integer(),
          writes: non_neg_integer(),
          cache: %{bytes: non_neg_integer(), hits: non_neg_integer(), misses: non_neg_integer()},
          gc: %{
            steps: non_neg_integer(),
            blobs: non_neg_integer(),
            partials: non_neg_integer(),
            bytes: non_neg_integer(),
            orphans: non_neg_integer()
          }
        }

  @default_timeout 60_000
  @piece 1_048_576
  @put_opts [instance: Keyring, timeout: @default_timeout, pin: nil, share: nil]

  @doc false
  @spec validate!(keyword()) :: keyword()
  defdelegate validate!(opts), to: Keyring.Store.Options

  @doc false
  def child_spec(opts) do
    %{id: __MODULE__, start: {Keyring.Store.Server, :start_link, [opts]}}
  end

  @doc """
  Stores `data`; returns its cid once the write is durable. `pin: true | name`
  and `share: ring | {ring, name} | [...]` tag it in the same commit.
  """
  @spec put(binary(), keyword()) :: {:ok, cid()} | {:error, term()}
  def put(data, opts \\ [])

  def put(data, opts) when is_binary(data) do
    opts = Keyword.validate!(opts, @put_opts)
    handle = handle(opts)
    tags = Tags.from_put_opts(opts)

    fn ref -> Native.store_put(handle, ref, data, tags) end
    |> Reply.call(opts[:timeout])
    |> encode_cid()
  end

  def put(other, _opts),
    do: raise(ArgumentError, "Keyring.Store.put/2 expects a binary, got: #{inspect(other)}")

  @doc """
  Stores a blob given as an enumerable of binaries (or iodata), without
  holding it whole in memory. Takes the options of `put/2`.

      Keyring.Store.put_stream(File.stream!("big.iso", [], 1_048_576))
  """
  @spec put_stream(Enumerable.t(), keyword()) :: {:ok, cid()} | {:error, term()}
  def put_stream(enumerable, opts \\ []) do
    opts = Keyword.validate!(opts, @put_opts)
    handle = handle(opts)
    tags = Tags.from_put_opts(opts)

    with {:ok, writer} <- Native.blob_writer_new(handle) do
      try do
        Enum.reduce_while(enumerable, :ok, fn piece, :ok ->
          case Native.blob_writer_write(writer, iodata!(piece)) do
            {:ok, :ok} -> {:cont, :ok}
            {:error, _} = error -> {:halt, error}
          end
        end)
      else
        :ok ->
          fn ref -> Native.blob_writer_finish(handle, writer, ref, tags) end
          |> Reply.call(opts[:timeout])
          |> encode_cid()

        error ->
          Native.blob_writer_abort(writer)
          error
      rescue
        e ->
          Native.blob_writer_abort(writer)
          reraise e, __STACKTRACE__
      end
    end
  end

  @doc """
  Stores the contents of the file at `path`. The file is read, hashed and
  copied by a native thread, never by the caller. Takes the options of `put/2`.
  """
  @spec put_file(Path.t(), keyword()) :: {:ok, cid()} | {:error, term()}
  def put_file(path, opts \\ []) do
    opts = Keyword.validate!(opts, @put_opts)
    handle = handle(opts)
    tags = Tags.from_put_opts(opts)
    path = path |> Path.expand() |> to_string()

    fn ref -> Native.store_import_file(handle, ref, path, tags) end
    |> Reply.call(opts[:timeout])
    |> encode_cid()
  end

  @doc "Reads the whole blob. With `verify: true` the bytes are checked against the cid."
  @spec get(cid() | <<_::256>>, keyword()) :: {:ok, binary()} | {:error, term()}
  def get(cid, opts \\ []) do
    opts = Keyword.validate!(opts, instance: Keyring, verify: false, timeout: @default_timeout)
    handle = handle(opts)
    cid = Cid.parse!(cid)
    verify = opts[:verify] == true

    # Hot small blobs come from the memory cache right here, on this
    # scheduler; others are looked up by the store's reader threads, which
    # answer a small blob's bytes, or a large blob opened for reading whole
    # on a dirty I/O scheduler.
    case not verify and Native.store_get_cached(handle, cid) do
      {:ok, _} = hit ->
        hit

      _ ->
        case Reply.call(&Native.store_get_async(handle, &1, cid, verify), opts[:timeout]) do
          {:ok, {reader, _size}} -> Native.store_reader_read_all(reader)
          other -> other
        end
    end
  end

  @doc "Whether the blob is stored (complete)."
  @spec has?(cid() | <<_::256>>, keyword()) :: boolean()
  def has?(cid, opts \\ []) do
    case size(cid, opts) do
      {:ok, _} -> true
      {:error, :not_found} -> false
      {:error, reason} -> raise "Keyring.Store.has?/2 failed: #{inspect(reason)}"
    end
  end

  @doc "The blob's size in bytes."
  @spec size(cid() | <<_::256>>, keyword()) :: {:ok, non_neg_integer()} | {:error, term()}
  def size(cid, opts \\ []) do
    opts = Keyword.validate!(opts, instance: Keyring)

    case Native.store_size(handle(opts), Cid.parse!(cid)) do
      {:ok, nil} -> {:error, :not_found}
      other -> other
    end
  end

  @doc """
  Deletes the blob (and any partial blob of it), whatever tags name it;
  `{:ok, false}` when there was nothing.
  """
  @spec delete(cid() | <<_::256>>, keyword()) :: {:ok, boolean()} | {:error, term()}
  def delete(cid, opts \\ []) do
    opts = Keyword.validate!(opts, instance: Keyring, timeout: @default_timeout)
    raw = Cid.parse!(cid)
    handle = handle(opts)
    Reply.call(&Native.store_delete(handle, &1, raw), opts[:timeout])
  end

  @doc """
  Streams the blob in pieces of `chunk_size` bytes (default 1 MiB). The
  stream keeps reading the blob it opened even if it is deleted meanwhile.
  With `verify: true` the pieces are hashed as they pass and
  `Keyring.Store.CorruptBlobError` is raised at the end if they do not
  match the cid.
  """
  @spec stream(cid() | <<_::256>>, keyword()) :: {:ok, Enumerable.t()} | {:error, term()}
  def stream(cid, opts \\ []) do
    opts = Keyword.validate!(opts, instance: Keyring, verify: false, chunk_size: @piece)

    unless is_integer(opts[:chunk_size]) and opts[:chunk_size] in 1..(16 * @piece),
      do: raise(ArgumentError, ":chunk_size must be an integer in 1..16 MiB")

    Reader.stream(handle(opts), Cid.parse!(cid), opts[:chunk_size], opts[:verify] == true)
  end

  @doc "A lazy stream of every cid in the store, in cid order (read in pages)."
  @spec list(keyword()) :: Enumerable.t()
  def list(opts \\ []) do
    opts = Keyword.validate!(opts, instance: Keyring)
    Reader.list(handle(opts))
  end

  @doc """
  Counts: blobs, bytes, index file size, partial blobs, share and pin tags,
  durable commits and writes, the cache's figures and GC's totals since start.
  """
  @spec stats(keyword()) :: stats()
  def stats(opts \\ []) do
    opts = Keyword.validate!(opts, instance: Keyring)

    case Native.store_stats(handle(opts)) do
      {:ok,
       {{blobs, bytes, file_bytes, partials, shares, pins}, {commits, writes},
        {cache_bytes, hits, misses}, {steps, gc_blobs, gc_partials, gc_bytes, orphans}}} ->
        %{
          blobs: blobs,
          bytes: bytes,
          file_bytes: file_bytes,
          partials: partials,
          shares: shares,
          pins: pins,
          commits: commits,
          writes: writes,
          cache: %{bytes: cache_bytes, hits: hits, misses: misses},
          gc: %{
            steps: steps,
            blobs: gc_blobs,
            partials: gc_partials,
            bytes: gc_bytes,
            orphans: orphans
          }
        }

      {:error, reason} ->
        raise "Keyring.Store.stats/1 failed: #{inspect(reason)}"
    end
  end

  @doc """
  Verifies every blob (and every large blob's outboard) against its cid,
  one blob at a time. Returns `{:ok, checked_count}` or
  `{:error, {:corrupt_blobs, cids}}`.
  """
  @spec check(keyword()) :: {:ok, non_neg_integer()} | {:error, {:corrupt_blobs, [cid()]}}
  def check(opts \\ []) do
    opts = Keyword.validate!(opts, instance: Keyring)
    Reader.check(handle(opts))
  end

  @doc """
  Shares the blob into keyring `ring` (its 32-byte id or its text form)
  under `name:` (default: named after the cid). Returns the cid the tag
  named before, if any. See "Sharing and pinning".
  """
  @spec share(cid() | <<_::256>>, ring(), keyword()) :: {:ok, cid() | nil} | {:error, term()}
  defdelegate share(cid, ring, opts \\ []), to: Tags

  @doc """
  Removes the blob's tag in keyring `ring` (the one named `name:`, default
  the one named after the cid), if it names this blob. `{:ok, false}` when
  there was none.
  """
  @spec unshare(cid() | <<_::256>>, ring(), keyword()) :: {:ok, boolean()} | {:error, term()}
  defdelegate unshare(cid, ring, opts \\ []), to: Tags

  @doc "Whether the blob is shared into keyring `ring` (the rule for serving its members)."
  @spec shared_in?(cid() | <<_::256>>, ring(), keyword()) :: boolean()
  defdelegate shared_in?(cid, ring, opts \\ []), to: Tags

  @doc """
  The tags of keyring `ring`, `[{name, cid}]` in name order (`nil` for tags
  named after their cid); at most `:limit` (default 10,000) after `:after`.
  """
  @spec tags(ring(), keyword()) :: [{binary() | nil, cid()}]
  defdelegate tags(ring, opts \\ []), to: Tags

  @doc "Pins the blob locally under `name:` (default: named after the cid)."
  @spec pin(cid() | <<_::256>>, keyword()) :: {:ok, cid() | nil} | {:error, term()}
  defdelegate pin(cid, opts \\ []), to: Tags

  @doc "Removes the blob's pin named `name:` (default: the one named after the cid)."
  @spec unpin(cid() | <<_::256>>, keyword()) :: {:ok, boolean()} | {:error, term()}
  defdelegate unpin(cid, opts \\ []), to: Tags

  @doc "The pins, `[{name, cid}]` in name order (as `tags/2`)."
  @spec pins(keyword()) :: [{binary() | nil, cid()}]
  defdelegate pins(opts \\ []), to: Tags

  @doc """
  Collects garbage to the end, in steps of `:budget` records (default
  1,000). Returns what it did: `%{steps, examined, blobs,
  partials, bytes, orphans}`. See "Garbage collection".
  """
  @spec gc(keyword()) :: {:ok, GC.totals()} | {:error, term()}
  def gc(opts \\ []) do
    opts = Keyword.validate!(opts, instance: Keyring, budget: 1_000, timeout: @default_timeout)

    unless is_integer(opts[:budget]) and opts[:budget] in 1..1_000_000,
      do: raise(ArgumentError, ":budget must be an integer in 1..1_000_000")

    GC.run(handle(opts), opts[:budget], opts[:timeout])
  end

  @doc """
  What the store holds of a blob being downloaded: `%{size, size_verified,
  have, missing}`, with `have` and `missing` as `{first, stop}` ranges of
  16 KiB groups (`stop` excluded). `size_verified` says whether the size was
  proven by the blob's last group. `{:error, :not_found}` when there is no
  partial blob.
  """
  @spec partial(cid() | <<_::256>>, keyword()) :: {:ok, map()} | {:error, term()}
  defdelegate partial(cid, opts \\ []), to: Partials

  @doc false
  defdelegate verified_stream(cid, ranges, opts \\ []), to: Partials

  @doc false
  defdelegate put_verified(cid, size, ranges, stream, opts \\ []), to: Partials

  @doc """
  Sets the ref `name` to `value` (durably). Refs are small mutable pointers
  (a log head, a root cid) beside the immutable blobs: names up to 1 KiB,
  values up to 64 KiB.
  """
  @spec put_ref(binary(), binary(), keyword()) :: :ok | {:error, term()}
  defdelegate put_ref(name, value, opts \\ []), to: Refs

  @doc "The value of ref `name`."
  @spec get_ref(binary(), keyword()) :: {:ok, binary()} | {:error, term()}
  defdelegate get_ref(name, opts \\ []), to: Refs

  @doc "Deletes ref `name`; `{:ok, false}` when it was not set."
  @spec delete_ref(binary(), keyword()) :: {:ok, boolean()} | {:error, term()}
  defdelegate delete_ref(name, opts \\ []), to: Refs

  @doc "Refs whose names start with `prefix`, as `{name, value}` pairs (at most `:limit`, default 10,000)."
  @spec list_refs(binary(), keyword()) :: {:ok, [{binary(), binary()}]} | {:error, term()}
  defdelegate list_refs(prefix, opts \\ []), to: Refs

  defp handle(opts), do: Instance.fetch!(opts[:instance], :store)

  defp encode_cid({:ok, raw}), do: {:ok, Cid.encode(raw)}
  defp encode_cid(other), do: other

  defp iodata!(piece) when is_binary(piece), do: piece
  defp iodata!(piece) when is_list(piece), do: IO.iodata_to_binary(piece)

  defp iodata!(other),
    do: raise(ArgumentError, "put_stream/2 expects binaries or iodata, got: #{inspect(other)}")
end
