defmodule Keyring.Ring.Persistence do
  @moduledoc false
  # Where a node keeps its keyrings: the membership log entries, the root key
  # (sealed key-file bytes, only on the node that created the keyring) and the
  # spent one-time invite tokens. One place to switch to Keyring.Store's
  # durable refs (put_ref("rings/<hex id>", blob)) once they land on main.
  #
  # Files: <data_dir>/rings/<hex id>.ring, written atomically with mode 0600.
  # The format is local (never read from a peer); entries are re-verified on
  # load, so a tampered log is refused rather than trusted.

  alias Keyring.Native

  @type state :: %{
          id: <<_::256>>,
          entries: [binary()],
          root_key: binary() | nil,
          spent: [binary()]
        }

  @spec save(Path.t(), state()) :: :ok | {:error, term()}
  def save(data_dir, %{id: id} = ring) do
    dir = Path.join(data_dir, "rings")
    File.mkdir_p!(dir)
    data = %{v: 1, entries: ring.entries, root_key: ring.root_key, spent: ring.spent}
    path = Path.join(dir, Base.encode16(id, case: :lower) <> ".ring")

    case Native.write_file_atomic(path, :erlang.term_to_binary(data)) do
      {:ok, :ok} -> :ok
      {:error, reason} -> {:error, reason}
    end
  end

  @spec load_all(Path.t()) :: [state()]
  def load_all(data_dir) do
    Path.join([data_dir, "rings", "*.ring"])
    |> Path.wildcard()
    |> Enum.flat_map(fn path ->
      with {:ok, id} <- Base.decode16(Path.basename(path, ".ring"), case: :lower),
           {:ok, bytes} <- File.read(path),
           %{v: 1, entries: entries, root_key: root, spent: spent} <-
             :erlang.binary_to_term(bytes, [:safe]) do
        [%{id: id, entries: entries, root_key: root, spent: spent}]
      else
        _ -> []
      end
    end)
  end

  @spec delete(Path.t(), <<_::256>>) :: :ok
  def delete(data_dir, id) do
    File.rm(Path.join([data_dir, "rings", Base.encode16(id, case: :lower) <> ".ring"]))
    :ok
  end
end
