defmodule Keyring.Store do
  @moduledoc """
  Content-addressed blob storage on an embedded redb database.

  A blob's id (its cid) is the BLAKE3 hash of its bytes, written as 64 hex
  characters (see `Keyring.Store.Cid`). Storing the same bytes twice is a
  no-op that returns the same cid.

      iex> dir = Path.join(System.tmp_dir!(), "keyring-store-#{Base.encode16(:crypto.strong_rand_bytes(6))}")
      iex> {:ok, _} = Keyring.start_link(name: StoreDoc, data_dir: dir)
      iex> {:ok, cid} = Keyring.Store.put("hello", keyring: StoreDoc)
      iex> cid
      "ea8f163db38682925e4491c5e58d4bb3506ef8c14eb78a86e908c5624a67200f"
      iex> Keyring.Store.get(cid, keyring: StoreDoc, verify: true)
      {:ok, "hello"}
      iex> Keyring.Store.has?(cid, keyring: StoreDoc)
      true
      iex> Keyring.Store.stats(keyring: StoreDoc).blobs
      1

  ## Durability

  `put/2`, `put_stream/2`, `delete/2` and `put_ref/3` answer only once their
  write is on disk (fsynced by a redb commit): an acknowledged write survives
  `kill -9` and power loss. Concurrent writers are grouped into one
  transaction by a native writer thread (group commit), so 64 concurrent
  callers share one fsync instead of queueing for 64.

  ## Large blobs

  `put_stream/2` and `put_file/2` take data piece by piece (spooled to a
  temporary file while hashed) and `stream/2` reads a blob back in 256 KiB
  chunks, so neither side holds a large blob whole in memory.

  ## Errors

  Bad arguments (a non-binary blob, a malformed cid) raise `ArgumentError`.
  Everything else is `{:error, reason}`:

  | reason | meaning |
  |---|---|
  | `:not_found` | no such blob or ref |
  | `:content_mismatch` | a verified read found bytes that do not hash to the cid |
  | `:no_space` | the disk is full; the write was not made |
  | `:busy` | the write queue, or the queue of reads waiting for a reader thread (65,536 each), is full |
  | `:closed` | the store is shutting down |
  | `:timeout` | no answer within `:timeout` |
  | `{:too_large, what}` | a ref name (> 1 KiB) or value (> 64 KiB) is too large |
  | `{:io, message}` | any other I/O error |

  Starting a Keyring whose store cannot be opened returns
  `{:error, {:store, :already_open}}` (another node uses the data dir) or
  `{:error, {:store, {:corrupted, message}}}`.

  ## Reads and the blob cache

  Small blobs (up to 16 KiB) that were read recently are kept in a memory
  cache (an LRU with a byte budget, default 64 MiB). `get/2` asks the cache
  first, on the caller's scheduler: a hit costs a hash lookup and a copy.
  A miss is queued to the store's reader threads (two by default), which
  read redb, fill the cache and answer by message, so a read that waits for
  the disk never holds up a scheduler. A small fixed pool rather than the
  BEAM's ten dirty I/O schedulers: on a small machine, ten threads reading
  at once crowd the scheduler threads off the cores. Blobs
  never change, so the cache is never stale; a delete removes the blob from
  it before the delete is acknowledged. `verify: true` always reads and hashes
  what is on disk. `stats/1` reports the cache's size, hits and misses.

  ## Options

  Every function takes `keyring:` (the instance, default `Keyring`); writes
  and `get/2` take `timeout:` (default 60 s); `get/2` and `stream/2` take `verify:`
  (default `false`).

  The store itself is configured by the `store:` option of `Keyring`:

    * `:cache_bytes` - budget of the blob cache in bytes (default 64 MiB;
      `0` turns it off).
    * `:read_threads` - reader threads serving blob reads that miss the
      cache (default 2; more helps when reads wait on a slow disk).
  """

  alias Keyring.{Instance, Native}
  alias Keyring.Native.Reply
  alias Keyring.Store.{Cid, CorruptBlobError}

  @type cid :: Cid.t()
  @type stats :: %{
          blobs: non_neg_integer(),
          bytes: non_neg_integer(),
          file_bytes: non_neg_integer(),
          commits: non_neg_integer(),
          writes: non_neg_integer(),
          cache: %{bytes: non_neg_integer(), hits: non_neg_integer(), misses: non_neg_integer()}
        }

  @default_timeout 60_000
  @default_cache_bytes 64 * 1024 * 1024
  @list_page 1_000
  @max_ref_name 1024
  @max_ref_value 64 * 1024

  @doc false
  @spec validate!(keyword()) :: keyword()
  def validate!(opts) do
    opts = Keyword.validate!(opts, cache_bytes: @default_cache_bytes, read_threads: 2)

    unless is_integer(opts[:cache_bytes]) and opts[:cache_bytes] >= 0,
      do:
        raise(
          ArgumentError,
          ":cache_bytes must be a non-negative integer, got: #{inspect(opts[:cache_bytes])}"
        )

    unless is_integer(opts[:read_threads]) and opts[:read_threads] in 1..64,
      do:
        raise(
          ArgumentError,
          ":read_threads must be an integer in 1..64, got: #{inspect(opts[:read_threads])}"
        )

    opts
  end

  @doc false
  def child_spec(opts) do
    %{id: __MODULE__, start: {Keyring.Store.Server, :start_link, [opts]}}
  end

  @doc "Stores `data`; returns its cid once the write is durable."
  @spec put(binary(), keyword()) :: {:ok, cid()} | {:error, term()}
  def put(data, opts \\ [])

  def put(data, opts) when is_binary(data) do
    opts = Keyword.validate!(opts, keyring: Keyring, timeout: @default_timeout)
    handle = handle(opts)

    fn ref -> Native.store_put(handle, ref, data) end
    |> Reply.call(opts[:timeout])
    |> encode_cid()
  end

  def put(other, _opts),
    do: raise(ArgumentError, "Keyring.Store.put/2 expects a binary, got: #{inspect(other)}")

  @doc """
  Stores a blob given as an enumerable of binaries (or iodata), without
  holding it whole in memory.

      Keyring.Store.put_stream(File.stream!("big.iso", [], 1_048_576))
  """
  @spec put_stream(Enumerable.t(), keyword()) :: {:ok, cid()} | {:error, term()}
  def put_stream(enumerable, opts \\ []) do
    opts = Keyword.validate!(opts, keyring: Keyring, timeout: @default_timeout)
    handle = handle(opts)

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
          fn ref -> Native.blob_writer_finish(handle, writer, ref) end
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

  @doc "Stores the contents of the file at `path` (streamed)."
  @spec put_file(Path.t(), keyword()) :: {:ok, cid()} | {:error, term()}
  def put_file(path, opts \\ []) do
    case File.open(path, [:read, :binary]) do
      {:ok, file} ->
        try do
          file |> IO.binstream(1_048_576) |> put_stream(opts)
        after
          File.close(file)
        end

      {:error, reason} ->
        {:error, {:io, "#{path}: #{:file.format_error(reason)}"}}
    end
  end

  @doc "Reads the whole blob. With `verify: true` the bytes are checked against the cid."
  @spec get(cid() | <<_::256>>, keyword()) :: {:ok, binary()} | {:error, term()}
  def get(cid, opts \\ []) do
    opts = Keyword.validate!(opts, keyring: Keyring, verify: false, timeout: @default_timeout)
    handle = handle(opts)
    cid = Cid.parse!(cid)
    verify = opts[:verify] == true

    # Hot small blobs come from the memory cache right here, on this
    # scheduler; anything else is read by the store's reader threads.
    case not verify and Native.store_get_cached(handle, cid) do
      {:ok, _} = hit -> hit
      _ -> Reply.call(&Native.store_get_async(handle, &1, cid, verify), opts[:timeout])
    end
  end

  @doc "Whether the blob is stored."
  @spec has?(cid() | <<_::256>>, keyword()) :: boolean()
  def has?(cid, opts \\ []) do
    opts = Keyword.validate!(opts, keyring: Keyring)

    case Native.store_size(handle(opts), Cid.parse!(cid)) do
      {:ok, size} -> size != nil
      {:error, reason} -> raise "Keyring.Store.has?/2 failed: #{inspect(reason)}"
    end
  end

  @doc "The blob's size in bytes."
  @spec size(cid() | <<_::256>>, keyword()) :: {:ok, non_neg_integer()} | {:error, term()}
  def size(cid, opts \\ []) do
    opts = Keyword.validate!(opts, keyring: Keyring)

    case Native.store_size(handle(opts), Cid.parse!(cid)) do
      {:ok, nil} -> {:error, :not_found}
      other -> other
    end
  end

  @doc "Deletes the blob; `{:ok, false}` when it was not there."
  @spec delete(cid() | <<_::256>>, keyword()) :: {:ok, boolean()} | {:error, term()}
  def delete(cid, opts \\ []) do
    opts = Keyword.validate!(opts, keyring: Keyring, timeout: @default_timeout)
    raw = Cid.parse!(cid)
    handle = handle(opts)
    Reply.call(fn ref -> Native.store_delete(handle, ref, raw) end, opts[:timeout])
  end

  @doc """
  Streams the blob in chunks of up to 256 KiB. With `verify: true` the chunks
  are hashed as they pass and `Keyring.Store.CorruptBlobError` is raised at
  the end if they do not match the cid.
  """
  @spec stream(cid() | <<_::256>>, keyword()) :: {:ok, Enumerable.t()} | {:error, term()}
  def stream(cid, opts \\ []) do
    opts = Keyword.validate!(opts, keyring: Keyring, verify: false)
    raw = Cid.parse!(cid)
    handle = handle(opts)

    case Native.store_size(handle, raw) do
      {:ok, nil} -> {:error, :not_found}
      {:ok, size} -> {:ok, chunk_stream(handle, raw, size, opts[:verify])}
      error -> error
    end
  end

  defp chunk_stream(handle, raw, size, verify?) do
    Stream.resource(
      fn -> {0, 0, if(verify?, do: Keyring.Hash.new())} end,
      fn
        :done ->
          {:halt, :done}

        {index, read, hasher} ->
          case Native.store_read_chunk(handle, raw, index) do
            {:ok, chunk} ->
              hasher && Keyring.Hash.update(hasher, chunk)
              {[chunk], {index + 1, read + byte_size(chunk), hasher}}

            :eof ->
              if read != size or (hasher && Keyring.Hash.finalize(hasher) != raw),
                do: raise(CorruptBlobError, cid: Cid.encode(raw))

              {:halt, :done}

            {:error, reason} ->
              raise "Keyring.Store.stream/2 failed reading #{Cid.encode(raw)}: #{inspect(reason)}"
          end
      end,
      fn _ -> :ok end
    )
  end

  @doc "A lazy stream of every cid in the store, in cid order (read in pages)."
  @spec list(keyword()) :: Enumerable.t()
  def list(opts \\ []) do
    opts = Keyword.validate!(opts, keyring: Keyring)
    handle = handle(opts)

    Stream.resource(
      fn -> nil end,
      fn
        :done ->
          {:halt, :done}

        after_cid ->
          case Native.store_list(handle, after_cid, @list_page) do
            {:ok, []} -> {:halt, :done}
            {:ok, page} -> {Enum.map(page, &Cid.encode/1), List.last(page)}
            {:error, reason} -> raise "Keyring.Store.list/1 failed: #{inspect(reason)}"
          end
      end,
      fn _ -> :ok end
    )
  end

  @doc "Counts: blobs, bytes, database file size, durable commits and writes so far."
  @spec stats(keyword()) :: stats()
  def stats(opts \\ []) do
    opts = Keyword.validate!(opts, keyring: Keyring)

    case Native.store_stats(handle(opts)) do
      {:ok, {{blobs, bytes, file_bytes}, {commits, writes}, {cache_bytes, hits, misses}}} ->
        %{
          blobs: blobs,
          bytes: bytes,
          file_bytes: file_bytes,
          commits: commits,
          writes: writes,
          cache: %{bytes: cache_bytes, hits: hits, misses: misses}
        }

      {:error, reason} ->
        raise "Keyring.Store.stats/1 failed: #{inspect(reason)}"
    end
  end

  @doc """
  Verifies every blob against its cid, one blob at a time. Returns
  `{:ok, checked_count}` or `{:error, {:corrupt_blobs, cids}}`.
  """
  @spec check(keyword()) :: {:ok, non_neg_integer()} | {:error, {:corrupt_blobs, [cid()]}}
  def check(opts \\ []) do
    opts = Keyword.validate!(opts, keyring: Keyring)
    handle = handle(opts)

    {count, bad} =
      opts
      |> list()
      |> Enum.reduce({0, []}, fn cid, {count, bad} ->
        case Native.store_verify(handle, Cid.parse!(cid)) do
          {:ok, false} -> {count + 1, [cid | bad]}
          {:error, :content_mismatch} -> {count + 1, [cid | bad]}
          _ -> {count + 1, bad}
        end
      end)

    if bad == [], do: {:ok, count}, else: {:error, {:corrupt_blobs, Enum.reverse(bad)}}
  end

  @doc """
  Sets the ref `name` to `value` (durably). Refs are small mutable pointers
  (a log head, a root cid) beside the immutable blobs.
  """
  @spec put_ref(binary(), binary(), keyword()) :: :ok | {:error, term()}
  def put_ref(name, value, opts \\ [])

  def put_ref(name, value, opts) when is_binary(name) and is_binary(value) do
    opts = Keyword.validate!(opts, keyring: Keyring, timeout: @default_timeout)
    handle = handle(opts)

    # Checked here too, so an oversized value is refused before it is copied
    # on a normal scheduler.
    cond do
      byte_size(name) > @max_ref_name ->
        {:error, {:too_large, "ref name"}}

      byte_size(value) > @max_ref_value ->
        {:error, {:too_large, "ref value"}}

      true ->
        Reply.call(fn ref -> Native.store_put_ref(handle, ref, name, value) end, opts[:timeout])
    end
  end

  def put_ref(name, value, _opts),
    do: raise(ArgumentError, "ref name and value must be binaries: #{inspect({name, value})}")

  @doc "The value of ref `name`."
  @spec get_ref(binary(), keyword()) :: {:ok, binary()} | {:error, term()}
  def get_ref(name, opts \\ []) when is_binary(name) do
    opts = Keyword.validate!(opts, keyring: Keyring)

    case Native.store_get_ref(handle(opts), name) do
      {:ok, nil} -> {:error, :not_found}
      other -> other
    end
  end

  @doc "Deletes ref `name`; `{:ok, false}` when it was not set."
  @spec delete_ref(binary(), keyword()) :: {:ok, boolean()} | {:error, term()}
  def delete_ref(name, opts \\ []) when is_binary(name) do
    opts = Keyword.validate!(opts, keyring: Keyring, timeout: @default_timeout)
    handle = handle(opts)

    if byte_size(name) > @max_ref_name,
      do: {:ok, false},
      else: Reply.call(fn ref -> Native.store_delete_ref(handle, ref, name) end, opts[:timeout])
  end

  @doc "Refs whose names start with `prefix`, as `{name, value}` pairs (at most `:limit`, default 10,000)."
  @spec list_refs(binary(), keyword()) :: {:ok, [{binary(), binary()}]} | {:error, term()}
  def list_refs(prefix, opts \\ []) when is_binary(prefix) do
    opts = Keyword.validate!(opts, keyring: Keyring, limit: 10_000)
    Native.store_list_refs(handle(opts), prefix, opts[:limit])
  end

  defp handle(opts), do: Instance.fetch!(opts[:keyring], :store)

  defp encode_cid({:ok, raw}), do: {:ok, Cid.encode(raw)}
  defp encode_cid(other), do: other

  defp iodata!(piece) when is_binary(piece), do: piece
  defp iodata!(piece) when is_list(piece), do: IO.iodata_to_binary(piece)

  defp iodata!(other),
    do: raise(ArgumentError, "put_stream/2 expects binaries or iodata, got: #{inspect(other)}")
end
