defmodule Keyring.Coordinator.Incarnation do
  @moduledoc false
  # A counter in <data_dir>/incarnation, bumped (durably) on every start, so
  # the cluster tells a restarted node from a node that merely reconnected.

  @spec bump(Path.t()) :: pos_integer()
  def bump(data_dir) do
    path = Path.join(data_dir, "incarnation")

    previous =
      case File.read(path) do
        {:ok, text} ->
          case Integer.parse(String.trim(text)) do
            {n, ""} when n >= 0 -> n
            _ -> 0
          end

        {:error, _} ->
          0
      end

    next = previous + 1
    {:ok, :ok} = Keyring.Native.write_file_atomic(path, Integer.to_string(next))
    next
  end
end
