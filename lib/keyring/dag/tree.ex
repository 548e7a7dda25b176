defmodule Keyring.DAG.Tree do
  @moduledoc false
  # Directory trees between the file system and the store (put_dir/get_dir).
  #
  # put: list the tree, store the files concurrently (so their writes share
  # group commits), then encode directories bottom-up (a directory only needs
  # its children's cids, which are hashes) and store those concurrently too.
  # The root is returned only when every write is durable.
  #
  # get: a fresh destination, names the decoder has already checked (no `/`,
  # `.` or `..`), files created exclusively and streamed from the store with
  # verification, sizes compared with what the directory claims.

  import Bitwise

  alias Keyring.DAG
  alias Keyring.DAG.{Codec, Directory}
  alias Keyring.Store
  alias Keyring.Store.{Cid, CorruptBlobError}

  # Files up to this size are read whole and stored with one put; larger ones
  # are streamed.
  @read_whole 1024 * 1024
  @max_entries 16_384

  ## put

  @spec put(Path.t(), keyword()) :: {:ok, Cid.t()} | {:error, term()}
  def put(path, opts) do
    with {:ok, %File.Stat{type: :directory}} <- lstat(path),
         {:ok, tree} <- scan(path, opts),
         {:ok, files} <- store_files(tree, opts),
         {:ok, {root, _size}, encoded} <- encode_dirs(tree, files),
         :ok <- DAG.put_all(encoded, opts[:instance]) do
      {:ok, root}
    else
      {:ok, %File.Stat{}} -> {:error, {:io, "#{path}: not a directory"}}
      {:error, _} = error -> error
    end
  end

  defp lstat(path) do
    case File.lstat(path) do
      {:ok, stat} -> {:ok, stat}
      {:error, reason} -> {:error, {:io, "#{path}: #{:file.format_error(reason)}"}}
    end
  end

  # {:dir, path, [{name, subtree}]} | {:file, path, kind}
  defp scan(path, opts) do
    with {:ok, names} <- ls(path),
         :ok <- check_count(path, names) do
      names
      |> Enum.sort()
      |> Enum.reduce_while({:ok, []}, fn name, {:ok, acc} ->
        child = Path.join(path, name)

        case scan_entry(child, opts) do
          {:ok, nil} -> {:cont, {:ok, acc}}
          {:ok, sub} -> {:cont, {:ok, [{name, sub} | acc]}}
          error -> {:halt, error}
        end
      end)
      |> case do
        {:ok, children} -> {:ok, {:dir, path, Enum.reverse(children)}}
        error -> error
      end
    end
  end

  defp scan_entry(path, opts) do
    case lstat(path) do
      {:ok, %File.Stat{type: :directory}} ->
        scan(path, opts)

      {:ok, %File.Stat{type: :regular, mode: mode}} ->
        {:ok, {:file, path, if(band(mode, 0o111) != 0, do: :executable, else: :file)}}

      {:ok, %File.Stat{}} ->
        if opts[:symlinks] == :skip, do: {:ok, nil}, else: {:error, {:unsupported_file, path}}

      error ->
        error
    end
  end

  defp ls(path) do
    case File.ls(path) do
      {:ok, names} -> {:ok, names}
      {:error, reason} -> {:error, {:io, "#{path}: #{:file.format_error(reason)}"}}
    end
  end

  defp check_count(path, names) when length(names) > @max_entries,
    do: {:error, {:bad_entry, path, "more than #{@max_entries} entries"}}

  defp check_count(_path, _names), do: :ok

  defp file_paths({:file, path, _kind}), do: [path]
  defp file_paths({:dir, _path, children}), do: Enum.flat_map(children, &file_paths(elem(&1, 1)))

  defp store_files(tree, opts) do
    instance = opts[:instance]
    progress = opts[:on_progress]

    tree
    |> file_paths()
    |> Task.async_stream(&store_file(&1, instance),
      max_concurrency: 16,
      ordered: false,
      timeout: :infinity
    )
    |> Enum.reduce_while({:ok, %{}, 0}, fn
      {:ok, {:ok, path, cid, size}}, {:ok, acc, bytes} ->
        acc = Map.put(acc, path, {cid, size})
        progress && progress.(%{files: map_size(acc), bytes: bytes + size})
        {:cont, {:ok, acc, bytes + size}}

      {:ok, {:error, _} = error}, _ ->
        {:halt, error}
    end)
    |> case do
      {:ok, files, _bytes} -> {:ok, files}
      error -> error
    end
  end

  defp store_file(path, instance) do
    opts = [instance: instance]

    result =
      case File.stat(path) do
        {:ok, %File.Stat{size: size}} when size <= @read_whole ->
          with {:ok, data} <- read(path), do: Store.put(data, opts)

        {:ok, _} ->
          Store.put_file(path, opts)

        {:error, reason} ->
          {:error, {:io, "#{path}: #{:file.format_error(reason)}"}}
      end

    with {:ok, cid} <- result, {:ok, size} <- Store.size(cid, opts), do: {:ok, path, cid, size}
  end

  defp read(path) do
    case File.read(path) do
      {:ok, data} -> {:ok, data}
      {:error, reason} -> {:error, {:io, "#{path}: #{:file.format_error(reason)}"}}
    end
  end

  # Returns {:ok, {cid, total_size}, encoded_nodes}.
  defp encode_dirs({:dir, path, children}, files) do
    Enum.reduce_while(children, {:ok, [], []}, fn {name, sub}, {:ok, entries, encoded} ->
      case sub do
        {:file, file, kind} ->
          {cid, size} = Map.fetch!(files, file)
          {:cont, {:ok, [%{name: name, kind: kind, size: size, cid: cid} | entries], encoded}}

        {:dir, _, _} = dir ->
          case encode_dirs(dir, files) do
            {:ok, {cid, size}, more} ->
              entry = %{name: name, kind: :directory, size: size, cid: cid}
              {:cont, {:ok, [entry | entries], more ++ encoded}}

            error ->
              {:halt, error}
          end
      end
    end)
    |> case do
      {:ok, entries, encoded} ->
        case Codec.encode(%Directory{entries: entries}) do
          {:ok, {raw, bytes}} ->
            total = entries |> Enum.map(& &1.size) |> Enum.sum()
            {:ok, {Cid.encode(raw), total}, [bytes | encoded]}

          {:error, {:invalid_node, why}} ->
            {:error, {:bad_entry, path, why}}
        end

      error ->
        error
    end
  end

  ## get

  @spec get(<<_::256>>, Path.t(), keyword()) :: :ok | {:error, term()}
  def get(root, dest, opts) do
    with :ok <- fresh(dest),
         {:ok, _size} <- get_tree(root, dest, opts[:instance]) do
      :ok
    end
  end

  defp fresh(dest) do
    case File.ls(dest) do
      {:ok, []} -> :ok
      {:ok, _} -> {:error, {:io, "#{dest}: not empty"}}
      {:error, :enoent} -> mkdir(dest)
      {:error, reason} -> {:error, {:io, "#{dest}: #{:file.format_error(reason)}"}}
    end
  end

  defp mkdir(path) do
    case File.mkdir(path) do
      :ok -> :ok
      {:error, reason} -> {:error, {:io, "#{path}: #{:file.format_error(reason)}"}}
    end
  end

  defp get_tree(cid, dir, instance) do
    case DAG.get_node(cid, instance: instance) do
      {:ok, %Directory{entries: entries}} ->
        Enum.reduce_while(entries, {:ok, 0}, fn entry, {:ok, total} ->
          case get_entry(entry, Path.join(dir, entry.name), instance) do
            :ok -> {:cont, {:ok, total + entry.size}}
            error -> {:halt, error}
          end
        end)

      {:ok, _} ->
        {:error, {:invalid_node, "#{Cid.encode(cid)} is not a directory"}}

      {:error, :not_found} ->
        {:error, {:missing, Cid.encode(cid)}}

      error ->
        error
    end
  end

  defp get_entry(%{kind: :directory, cid: cid, size: size}, path, instance) do
    with :ok <- mkdir(path),
         {:ok, total} <- get_tree(cid, path, instance) do
      if total == size, do: :ok, else: {:error, {:size_mismatch, path}}
    end
  end

  defp get_entry(%{kind: kind, cid: cid, size: size}, path, instance) do
    with {:ok, chunks} <- blob_stream(cid, instance),
         :ok <- write_file(path, chunks, size) do
      File.chmod(path, if(kind == :executable, do: 0o755, else: 0o644))
    end
  end

  defp blob_stream(cid, instance) do
    case Store.stream(cid, instance: instance, verify: true) do
      {:ok, chunks} -> {:ok, chunks}
      {:error, :not_found} -> {:error, {:missing, cid}}
      error -> error
    end
  end

  defp write_file(path, chunks, size) do
    case File.open(path, [:write, :exclusive, :binary, :raw]) do
      {:ok, io} ->
        try do
          written =
            Enum.reduce(chunks, 0, fn chunk, n ->
              :ok = :file.write(io, chunk)
              n + byte_size(chunk)
            end)

          if written == size, do: :ok, else: {:error, {:size_mismatch, path}}
        rescue
          e in CorruptBlobError -> {:error, {:content_mismatch, e.cid}}
        after
          File.close(io)
        end

      {:error, reason} ->
        {:error, {:io, "#{path}: #{:file.format_error(reason)}"}}
    end
  end
end
