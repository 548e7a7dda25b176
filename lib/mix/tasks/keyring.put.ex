defmodule Mix.Tasks.Keyring.Put do
  @shortdoc "Stores a file or a directory tree and prints its cid"
  @moduledoc """
  Stores `PATH` in the store of the node whose data lives in `--data-dir`
  (default: the `:keyring, :data_dir` config or `.keyring/<node>`) and
  prints the cid: for a file, the blob's cid; for a directory, the root of
  a Merkle DAG (`Keyring.DAG.put_dir/2`) that `Keyring.DAG.get_dir/3`
  writes back out.

      mix keyring.put PATH [--share RING]... [--skip-symlinks] [--data-dir DIR] [--passphrase P]

  `--share RING` shares the cid into keyring `RING` (its id), so members of
  that keyring can fetch it (`mix keyring.get`, `Keyring.Sync`); for a
  directory, its root is shared.

  A progress line (files and bytes stored) is kept up to date on stderr.
  Run it while the node is stopped (it opens the node's data dir), or call
  `Keyring.DAG.put_dir/2` on the running node.
  """
  use Mix.Task
  import Bitwise

  @switches [data_dir: :string, passphrase: :string, skip_symlinks: :boolean, share: :keep]
  @cli :keyring_cli

  @impl Mix.Task
  def run(args) do
    {opts, rest} = OptionParser.parse!(args, strict: @switches)

    path =
      case rest do
        [path] -> path
        _ -> Mix.raise("usage: mix keyring.put PATH")
      end

    Mix.Task.run("app.start", ["--no-start"])
    Application.put_env(:keyring, :autostart, false)
    {:ok, _} = Application.ensure_all_started(:keyring)
    {:ok, _} = Keyring.start_link(Mix.Tasks.Keyring.Keyring.instance_opts(opts))

    result =
      case File.stat(path) do
        {:ok, %File.Stat{type: :directory}} ->
          started = System.monotonic_time(:millisecond)

          with {:ok, cid} <-
                 Keyring.DAG.put_dir(path,
                   instance: @cli,
                   symlinks: if(opts[:skip_symlinks], do: :skip, else: :error),
                   on_progress: &progress(&1, started, false)
                 ) do
            if last = Process.get(:keyring_put_last), do: progress(last, started, true)
            {:ok, cid}
          end

        {:ok, %File.Stat{type: :regular, size: size}} ->
          started = System.monotonic_time(:millisecond)

          with {:ok, cid} <- Keyring.Store.put_file(path, instance: @cli) do
            progress(%{files: 1, bytes: size}, started, true)
            {:ok, cid}
          end

        {:ok, %File.Stat{type: type}} ->
          {:error, {:unsupported_file, "#{path} (#{type})"}}

        {:error, reason} ->
          {:error, {:io, "#{path}: #{:file.format_error(reason)}"}}
      end

    case result do
      {:ok, cid} ->
        IO.write(:stderr, "\n")

        for ring <- Keyword.get_values(opts, :share) do
          case Keyring.Store.share(cid, ring, instance: @cli) do
            {:ok, _} -> Mix.shell().info("shared into #{ring}")
            {:error, reason} -> Mix.raise("could not share into #{ring}: #{inspect(reason)}")
          end
        end

        Mix.shell().info(cid)

      {:error, reason} ->
        IO.write(:stderr, "\n")
        Mix.raise("could not store #{path}: #{inspect(reason)}")
    end
  end

  # Redraws the progress line at most every 100 ms, and once at the end.
  defp progress(%{files: files, bytes: bytes} = state, started, final?) do
    Process.put(:keyring_put_last, state)
    now = System.monotonic_time(:millisecond)

    if final? or now - Process.get(:keyring_put_drawn, -1000) >= 100 do
      Process.put(:keyring_put_drawn, now)
      secs = max(now - started, 1) / 1000
      rate = format_bytes(round(bytes / secs))
      IO.write(:stderr, "\r#{files} files, #{format_bytes(bytes)} (#{rate}/s)   ")
    end
  end

  defp format_bytes(n) when n >= 1 <<< 30, do: "#{Float.round(n / (1 <<< 30), 2)} GiB"
  defp format_bytes(n) when n >= 1 <<< 20, do: "#{Float.round(n / (1 <<< 20), 1)} MiB"
  defp format_bytes(n) when n >= 1 <<< 10, do: "#{Float.round(n / (1 <<< 10), 1)} KiB"
  defp format_bytes(n), do: "#{n} B"
end
